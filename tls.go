package pivot

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// LoadMutualTLS builds a Config.TLS for mutual TLS from PEM files: this instance's
// certificate and key, and the certificate authority that signed every instance's
// certificate, trusted both to verify the peers this instance dials and to verify the
// client certificates it asks for (tls.RequireAndVerifyClientCert). Each node's
// certificate must name the host of the address it is known by (Config.Advertise or
// its NodesKey entry).
func LoadMutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pivot: load TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pivot: read TLS authority: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("pivot: read TLS authority %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
