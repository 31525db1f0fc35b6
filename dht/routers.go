package dht

// MainlineRouters returns the well-known bootstrap routers of the mainline DHT, as
// "host:port" for Config.BootstrapHosts. A node never contacts them unless it is given
// them: nothing in this module uses them by default (the CLI's "--bootstrap default"
// does). Each call returns a new slice.
func MainlineRouters() []string {
	return []string{
		"router.bittorrent.com:6881",
		"dht.transmissionbt.com:6881",
		"router.utorrent.com:6881",
		"dht.libtorrent.org:25401",
	}
}
