// Package testenv holds helpers that tests of several packages share: a self-signed
// certificate for TLS signalling, a check that WebRTC connects over loopback here, and
// the offer flood of the abuse tests (FloodOffer).
package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// SelfSigned writes a self-signed certificate for localhost and 127.0.0.1 and its key to
// the test's temporary directory, and returns their files and a pool trusting it.
func SelfSigned(t testing.TB) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

var (
	webrtcOnce sync.Once
	webrtcErr  error
)

// NeedWebRTC skips the test when two WebRTC transports cannot connect over loopback here
// (no loopback ICE candidates), unless the environment variable CI is set: there it
// fails. The check runs once per test binary.
func NeedWebRTC(t testing.TB) {
	t.Helper()
	webrtcOnce.Do(func() { webrtcErr = tryWebRTC() })
	switch {
	case webrtcErr == nil:
	case os.Getenv("CI") != "":
		t.Fatalf("WebRTC does not connect over loopback here: %v", webrtcErr)
	default:
		t.Skipf("WebRTC does not connect over loopback here (set CI to fail instead): %v", webrtcErr)
	}
}

// tryWebRTC connects two loopback transports through a signalling server.
func tryWebRTC() error {
	a, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := webrtc.NewServer(b, nil)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() { srv.Close(); <-done }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.Dial(ctx, l.Addr().String())
	return err
}
