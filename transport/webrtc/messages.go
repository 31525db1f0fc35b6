package webrtc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"unicode/utf8"

	"github.com/anacrolix/torrent/bencode"
)

// The messages of the signalling protocols, and the signalling-server announcement sent as
// the first message on a data channel.

// announceStyle is the form of the first data-channel message that announces our
// signalling server.
type announceStyle int

const (
	announceNone announceStyle = iota
	announceHTTP               // JSON {"http_server":{"host":...,"port":...}} (webtorrent-dht 0.18)
	announceWS                 // bencoded {ws_server: {host, port}} (webtorrent-dht up to 0.17)
)

// maxHostLen bounds the host of an announced signalling server (a DNS name is at most 253).
const maxHostLen = 253

// encodeAnnouncement returns the first message announcing the signalling server at host:port.
func encodeAnnouncement(style announceStyle, host string, port int) []byte {
	switch style {
	case announceHTTP:
		// Field order as the JS's JSON.stringify({http_server: {host, port}}).
		b, _ := json.Marshal(struct {
			HTTPServer hostPort `json:"http_server"`
		}{hostPort{Host: host, Port: port}})
		return b
	case announceWS:
		// d9:ws_serverd4:host<len>:<host>4:porti<port>eee, as bencode.encode sorts keys.
		var b bytes.Buffer
		b.WriteString("d9:ws_serverd4:host")
		b.WriteString(strconv.Itoa(len(host)))
		b.WriteByte(':')
		b.WriteString(host)
		b.WriteString("4:porti")
		b.WriteString(strconv.Itoa(port))
		b.WriteString("eee")
		return b.Bytes()
	}
	return nil
}

type hostPort struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// parseAnnouncement recognises a first data-channel message that announces the peer's
// signalling server: JSON {"http_server":{"host","port"}} or bencoded {ws_server:{host,
// port}}. It returns ok when b is such an announcement, which is then not a KRPC message,
// and the server's "host:port" when it is usable (empty otherwise).
func parseAnnouncement(b []byte) (server string, ok bool) {
	var hp hostPort
	switch {
	case len(b) > 0 && b[0] == '{':
		var m struct {
			HTTPServer *struct {
				Host json.RawMessage `json:"host"`
				Port json.RawMessage `json:"port"`
			} `json:"http_server"`
		}
		if json.Unmarshal(b, &m) != nil || m.HTTPServer == nil {
			return "", false
		}
		// The JS reads host.toString() and the port as it is; accept a string host and
		// an integer port (as a number or a numeric string).
		if json.Unmarshal(m.HTTPServer.Host, &hp.Host) != nil {
			return "", true
		}
		if json.Unmarshal(m.HTTPServer.Port, &hp.Port) != nil {
			var s string
			if json.Unmarshal(m.HTTPServer.Port, &s) != nil {
				return "", true
			}
			hp.Port, _ = strconv.Atoi(s)
		}
	case bytes.HasPrefix(b, []byte("d9:ws_server")):
		var m struct {
			WSServer *struct {
				Host string `bencode:"host"`
				Port int    `bencode:"port"`
			} `bencode:"ws_server"`
		}
		if bencode.Unmarshal(b, &m) != nil || m.WSServer == nil {
			return "", true // not KRPC either: "ws_server" sorts after every KRPC key
		}
		hp.Host, hp.Port = m.WSServer.Host, m.WSServer.Port
	default:
		return "", false
	}
	if !validHost(hp.Host) || hp.Port < 1 || hp.Port > 65535 {
		return "", true
	}
	return net.JoinHostPort(hp.Host, strconv.Itoa(hp.Port)), true
}

// validHost accepts a plausible host name or IP literal: printable, no spaces, bounded.
func validHost(h string) bool {
	if h == "" || len(h) > maxHostLen || !utf8.ValidString(h) {
		return false
	}
	for _, r := range h {
		if r <= ' ' || r == 0x7f || r == '/' || r == '?' || r == '#' || r == '@' {
			return false
		}
	}
	return true
}

// signal is an offer or answer as the signalling protocols carry it: JSON over HTTP,
// bencode over WebSocket.
type signal struct {
	Type       string   `json:"type" bencode:"type"`
	SDP        string   `json:"sdp" bencode:"sdp"`
	Extensions []string `json:"extensions" bencode:"extensions"`
}

var errSignal = errors.New("webrtc: malformed signalling message")

// decodeJSONSignal parses a JSON offer or answer and checks its type.
func decodeJSONSignal(b []byte, want string) (*signal, error) {
	var s struct {
		Type       string          `json:"type"`
		SDP        string          `json:"sdp"`
		Extensions json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", errSignal, err)
	}
	out := &signal{Type: s.Type, SDP: s.SDP}
	_ = json.Unmarshal(s.Extensions, &out.Extensions) // advisory: ignore a malformed list
	return out, out.check(want)
}

// decodeBencodeSignal parses a bencoded offer or answer and checks its type.
func decodeBencodeSignal(b []byte, want string) (*signal, error) {
	var s struct {
		Type       string        `bencode:"type"`
		SDP        string        `bencode:"sdp"`
		Extensions bencode.Bytes `bencode:"extensions"`
	}
	if err := bencode.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", errSignal, err)
	}
	out := &signal{Type: s.Type, SDP: s.SDP}
	if len(s.Extensions) > 0 {
		_ = bencode.Unmarshal(s.Extensions, &out.Extensions)
	}
	return out, out.check(want)
}

func (s *signal) check(want string) error {
	if s.Type != want {
		return fmt.Errorf("%w: type %q, want %q", errSignal, s.Type, want)
	}
	if s.SDP == "" {
		return fmt.Errorf("%w: no sdp", errSignal)
	}
	return nil
}

func (s *signal) json() []byte {
	b, _ := json.Marshal(s)
	return b
}

func (s *signal) bencode() []byte {
	return bencode.MustMarshal(s)
}
