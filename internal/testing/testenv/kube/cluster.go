package kube

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/testcert"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/process"

	"k8s.io/client-go/kubernetes"
)

// startTimeout bounds how long etcd and kube-apiserver may take to be
// ready; generous, because the machine may be busy compiling.
const startTimeout = 2 * time.Minute

// How often a starting server is asked whether it is ready, and how long
// a stopping one has after SIGTERM.
const (
	pollInterval = 100 * time.Millisecond
	stopGrace    = 15 * time.Second
)

// cluster is etcd and kube-apiserver running from one directory.
type cluster struct {
	dir             string
	etcd, apiserver *process.Process
}

// start writes the keys and certificates into a new directory and starts
// etcd, then kube-apiserver, each on free loopback ports (tried again
// when a port is taken in between).
func start(bins Binaries) (*Server, *cluster, error) {
	dir, err := os.MkdirTemp("", "gitgrant-kube-")
	if err != nil {
		return nil, nil, err
	}
	c := &cluster{dir: dir}
	srv := &Server{AdminUser: "gitgrant-test-admin", AdminToken: randomHex(24)}
	if srv.CAData, err = writeCredentials(dir, srv); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("writing test credentials: %w", err)
	}
	for attempt := 0; ; attempt++ {
		err = c.startEtcd(bins.Etcd)
		if err == nil {
			break
		}
		if attempt == 2 {
			c.stop()
			return nil, nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		err = c.startAPIServer(bins.APIServer, srv)
		if err == nil {
			return srv, c, nil
		}
		if attempt == 2 {
			c.stop()
			return nil, nil, err
		}
	}
}

func (c *cluster) startEtcd(bin string) error {
	client, peer := freePort(), freePort()
	if client == 0 || peer == 0 {
		return errors.New("no free loopback port for etcd")
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	data := filepath.Join(c.dir, "etcd")
	os.RemoveAll(data)
	p, err := process.Start(bin,
		"--name=test", "--data-dir="+data,
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL,
		// A throwaway store: durability buys nothing and costs seconds.
		"--unsafe-no-fsync", "--log-level=warn",
	)
	if err != nil {
		return err
	}
	health, _ := http.NewRequest(http.MethodGet, clientURL+"/health", nil)
	if err := p.WaitReady("etcd", startTimeout, pollInterval, stopGrace, answersOK(http.DefaultClient, health, "etcd /health")); err != nil {
		return err
	}
	c.etcd = p
	os.WriteFile(filepath.Join(c.dir, "etcd.url"), []byte(clientURL), 0o600)
	return nil
}

func (c *cluster) startAPIServer(bin string, srv *Server) error {
	port := freePort()
	if port == 0 {
		return errors.New("no free loopback port for kube-apiserver")
	}
	etcdURL, err := os.ReadFile(filepath.Join(c.dir, "etcd.url"))
	if err != nil {
		return err
	}
	srv.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
	f := func(name string) string { return filepath.Join(c.dir, name) }
	p, err := process.Start(bin,
		"--etcd-servers="+string(etcdURL),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+f("serving.pem"), "--tls-private-key-file="+f("serving.key"),
		"--cert-dir="+f("certs"),
		"--authorization-mode=RBAC",
		"--token-auth-file="+f("tokens.csv"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+f("sa.pub"),
		"--service-account-signing-key-file="+f("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24",
		// Nothing runs pods here; the Endpoints of the kubernetes
		// service would point nowhere.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(srv.CAData)}}, Timeout: 5 * time.Second}
	readyz, _ := http.NewRequest(http.MethodGet, srv.URL+"/readyz", nil)
	readyz.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	if err := p.WaitReady("kube-apiserver", startTimeout, pollInterval, stopGrace, answersOK(client, readyz, "/readyz")); err != nil {
		return err
	}
	c.apiserver = p
	admin, err := kubernetes.NewForConfig(srv.AdminConfig())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		err = aggregateClusterRoles(ctx, admin)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("filling the aggregated ClusterRoles: %w", err)
	}
	return nil
}

// stop ends kube-apiserver, then etcd, and removes the directory.
func (c *cluster) stop() error {
	defer os.RemoveAll(c.dir)
	var errs []error
	for _, p := range []*process.Process{c.apiserver, c.etcd} {
		if p != nil {
			errs = append(errs, p.Stop(stopGrace))
		}
	}
	return errors.Join(errs...)
}

// writeCredentials writes into dir: a CA and a serving certificate for
// 127.0.0.1 and localhost (ca.pem, serving.pem, serving.key), the
// service-account signing key pair (sa.key, sa.pub) and the static token
// of the administrator (tokens.csv). It returns the CA's PEM.
func writeCredentials(dir string, srv *Server) ([]byte, error) {
	tlsPEM, err := testcert.Loopback("gitgrant test Kubernetes CA", "kube-apiserver", "kubernetes.default.svc")
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPriv, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	caPEM := tlsPEM.CA
	files := map[string][]byte{
		"ca.pem":      caPEM,
		"serving.pem": tlsPEM.Cert,
		"serving.key": tlsPEM.Key,
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saPriv}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		// token,user,uid,"group1,group2"
		"tokens.csv": fmt.Appendf(nil, "%s,%s,%s,\"system:masters\"\n", srv.AdminToken, srv.AdminUser, srv.AdminUser),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

func certPool(pemData []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemData)
	return p
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// answersOK is a readiness probe: client's answer to req (a GET, sent
// again at each poll) is 200 OK.
func answersOK(client *http.Client, req *http.Request, what string) func() error {
	return func() error {
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", what, resp.Status)
		}
		return nil
	}
}
