package gitserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves the same bare repositories over ssh, running git's own
// upload-pack and receive-pack for each session, and accepting only one
// client key. It is as close to GitHub's ssh endpoint as a test needs.
type SSHServer struct {
	Addr       string // 127.0.0.1:port
	ClientKey  string // path of the client's private key (OpenSSH PEM)
	KnownHosts string // a known_hosts file naming the server's host key
	root       string
	listener   net.Listener
	wg         sync.WaitGroup
}

// StartSSH serves s.Root over ssh on a loopback port.
func (s *Server) StartSSH(t testing.TB) *SSHServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	sshClientPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pemBlock, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &SSHServer{ClientKey: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"), root: s.Root}
	if err := os.WriteFile(srv.ClientKey, pem.EncodeToMemory(pemBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if string(key.Marshal()) == string(sshClientPub.Marshal()) {
			return &ssh.Permissions{}, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	config.AddHostKey(hostKey)
	srv.listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Addr = srv.listener.Addr().String()
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, hostKey.PublicKey())
	if err := os.WriteFile(srv.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		for {
			conn, err := srv.listener.Accept()
			if err != nil {
				return
			}
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				srv.serve(conn, config)
			}()
		}
	}()
	t.Cleanup(func() { srv.listener.Close(); srv.wg.Wait() })
	return srv
}

// URL is the ssh URL of a repository.
func (s *SSHServer) URL(name string) string { return "ssh://git@" + s.Addr + "/" + name + ".git" }

func (s *SSHServer) serve(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, requests)
	}
}

// session runs one "exec git-upload-pack '/name.git'" (or receive-pack).
func (s *SSHServer) session(ch ssh.Channel, requests <-chan *ssh.Request) {
	defer ch.Close()
	for req := range requests {
		if req.Type == "env" {
			req.Reply(true, nil)
			continue
		}
		if req.Type != "exec" || len(req.Payload) < 4 {
			req.Reply(false, nil)
			continue
		}
		command := string(req.Payload[4:])
		prog, arg, _ := strings.Cut(command, " ")
		repo := filepath.Join(s.root, filepath.Clean("/"+strings.Trim(arg, `'"`)))
		if prog != "git-upload-pack" && prog != "git-receive-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(prog, "git-"), repo)
		cmd.Env = IsolatedEnv()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		var payload [4]byte
		binary.BigEndian.PutUint32(payload[:], status)
		ch.SendRequest("exit-status", false, payload[:])
		return
	}
}
