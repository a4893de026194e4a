package sim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/providers/postgres"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"
)

// sshKey is every person's public key, for the ephemeral accounts'
// secrets: one fixed ed25519 key (the simulation never decrypts).
var sshKey = func() string {
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " sim"
}()

// pgDSNEnv is the variable gitgrant.yaml names for provider db's DSN on
// PostgreSQL; the simulation answers it per pass (pgSystem.open).
const pgDSNEnv = "SIM_PG_DSN"

// pgCallTimeout is provider db's call_timeout on PostgreSQL.
const pgCallTimeout = 2 * time.Second

// pgPeople are every login role a run makes: the people and the drift.
var pgPeople = []string{"alice", "bob", "carol", "owner1", "owner2", "owner3", "mallory", "svc", "x1", "x2", "x3", "x4", "x5"}

// pgSystem is provider db on a real PostgreSQL server: the real postgres
// provider, connecting as a login that holds the run's group roles WITH
// ADMIN OPTION and nothing else (docs/providers/postgres.md). Every role
// of a run starts with its prefix, so that runs share the server side by
// side; the ground truth is pg_auth_members, read as the superuser.
type pgSystem struct {
	w      *world
	prefix string
	admin  *pgx.Conn
	// dsn is gitgrant's login; refused is a port nobody listens on (the
	// server down); hung is a listener that accepts and never answers.
	dsn, refused, hung string

	mu  sync.Mutex
	log []fake.Call
	// accounts are the ephemeral accounts gitgrant created, with the end
	// it gave each; secrets are their passwords, which must never reach
	// git or GitHub in clear.
	accounts map[string]time.Time
	secrets  []string
	// rogues are logins made by hand with the accounts' prefix.
	rogues []string
}

// ephemeralRole is provider db's role with mode: ephemeral, on
// PostgreSQL only: each request gets an account of its own.
const ephemeralRole = "tmp"

// Ops of the ephemeral accounts, in the call record.
const (
	opAccounts fake.Op = "accounts"
	opCreate   fake.Op = "create-account"
	opDrop     fake.Op = "drop-account"
)

// newPGSystem makes the run's roles on the server at testenv.PostgresDSN
// (skipping the test locally, failing it under CI=true, without one) and
// drops them when the test ends.
func newPGSystem(w *world) *pgSystem {
	t := w.t
	t.Helper()
	superDSN := testenv.PostgresDSN(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, superDSN)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	s := &pgSystem{w: w, admin: admin, accounts: map[string]time.Time{}, prefix: fmt.Sprintf("sim%d_%s", w.opts.Seed, hex.EncodeToString(b))}
	t.Cleanup(func() {
		admin.Exec(ctx, `DO $$DECLARE r text; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, '`+s.prefix+`_') LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP; END$$`)
		admin.Close(ctx)
	})
	gg := s.role("gitgrant")
	var sql []string
	groups := append(slices.Clone(providerRoles["db"]), ephemeralRole)
	for _, r := range groups {
		sql = append(sql, "CREATE ROLE "+s.role(r)+" NOLOGIN")
	}
	// CREATEROLE and pg_signal_backend for the ephemeral role's accounts
	// (docs/providers/postgres.md, least privilege).
	sql = append(sql, "CREATE ROLE "+gg+" LOGIN CREATEROLE", "GRANT pg_signal_backend TO "+gg)
	for _, r := range groups {
		sql = append(sql, "GRANT "+s.role(r)+" TO "+gg+" WITH ADMIN OPTION")
	}
	for _, who := range pgPeople {
		sql = append(sql, "CREATE ROLE "+s.role(who)+" LOGIN")
	}
	if _, err := admin.Exec(ctx, strings.Join(sql, "; ")); err != nil {
		t.Fatalf("making the run's roles: %v", err)
	}
	u, err := url.Parse(superDSN)
	if err != nil || u.Scheme == "" {
		t.Fatalf("the PostgreSQL DSN must be a URL to derive gitgrant's login from it: %v", err)
	}
	u.User = url.User(s.prefix + "_gitgrant")
	s.dsn = u.String()
	u.Host = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s.refused = u.String()
	u.Host = hangingListener(t)
	s.hung = u.String()
	return s
}

// role is the run's role named name, quoted.
func (s *pgSystem) role(name string) string { return pgx.Identifier{s.prefix + "_" + name}.Sanitize() }

// hangingListener accepts connections and never answers: a server that
// hangs. It returns its address.
func hangingListener(t interface {
	Fatal(...any)
	Cleanup(func())
}) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// open is the postgres factory of a pass: the real provider, told the
// DSN of the server as it is in this pass (up, down or hung).
func (s *pgSystem) open(ctx context.Context, pc gitgrant.ProviderConfig) (providers.Provider, error) {
	dsn := s.dsn
	switch {
	case s.w.faults.down["db"]:
		dsn = s.refused
	case s.w.faults.hung["db"]:
		dsn = s.hung
	}
	deps := providers.DefaultDeps()
	deps.Getenv = func(k string) string {
		if k == pgDSNEnv {
			return dsn
		}
		return ""
	}
	deps.Clock = s.w.clock
	p, err := postgres.Open(ctx, pc, deps)
	if err != nil {
		return nil, err
	}
	return &pgRecorder{Provider: p.(*postgres.Provider), s: s}, nil
}

// record notes a call, as the in-memory provider does, and says whether
// the reconciler is dead or this write kills it.
func (s *pgSystem) record(c fake.Call) error {
	s.mu.Lock()
	s.log = append(s.log, c)
	s.mu.Unlock()
	w := s.w
	if w.killed || (c.Op == fake.OpGrant || c.Op == fake.OpRevoke || c.Op == opCreate || c.Op == opDrop) && w.tick() {
		return errors.New("the reconciler was killed")
	}
	return nil
}

func (s *pgSystem) calls() []fake.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// holders reads pg_auth_members: who is a member of the role's group
// role now.
func (s *pgSystem) holders(role string) []string {
	rows, err := s.admin.Query(context.Background(), `SELECT m.rolname FROM pg_auth_members am
  JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
  WHERE g.rolname = $1 ORDER BY 1`, s.prefix+"_"+role)
	if err != nil {
		s.w.t.Fatalf("reading pg_auth_members: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.w.t.Fatalf("reading pg_auth_members: %v", err)
	}
	out := []string{}
	for _, n := range names {
		if n == s.prefix+"_gitgrant" {
			continue // gitgrant's own login administers the group
		}
		out = append(out, s.person(n))
	}
	return out
}

// person is the simulation's name of a principal.
func (s *pgSystem) person(principal string) string {
	if p, ok := strings.CutPrefix(principal, s.prefix+"_"); ok {
		return p
	}
	return principal
}

// hangTimer, while provider db hangs, times a call to it into
// Result.Waited; call the function it returns when the call ends.
func (w *world) hangTimer() func() {
	if !w.faults.hung["db"] {
		return func() {}
	}
	t0 := time.Now()
	return func() {
		w.waitMu.Lock()
		w.res.Waited += time.Since(t0)
		w.waitMu.Unlock()
	}
}

// person is the simulation's name of a principal of provider.
func (w *world) person(provider, principal string) string {
	if provider == "db" && w.pg != nil {
		return w.pg.person(principal)
	}
	return principal
}

// drift is a GRANT by hand, as a DBA would type it.
func (s *pgSystem) drift(role string, who []string) {
	var sql []string
	for _, pr := range who {
		sql = append(sql, "GRANT "+s.role(role)+" TO "+s.role(pr))
	}
	if _, err := s.admin.Exec(context.Background(), strings.Join(sql, "; ")); err != nil {
		s.w.t.Fatalf("drift: %v", err)
	}
}

// rogue creates a login named like an ephemeral account, by hand.
func (s *pgSystem) rogue(name string) {
	if _, err := s.admin.Exec(context.Background(), "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN; GRANT "+s.role(ephemeralRole)+" TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		s.w.t.Fatalf("drift: %v", err)
	}
	s.mu.Lock()
	s.rogues = append(s.rogues, name)
	s.mu.Unlock()
}

// pgRecorder is the real provider with the simulation's record of calls
// and its kill -9.
type pgRecorder struct {
	*postgres.Provider
	s *pgSystem
}

func (r *pgRecorder) Members(ctx context.Context, role string) ([]providers.Member, error) {
	if err := r.s.record(fake.Call{Op: fake.OpMembers, Role: role}); err != nil {
		return nil, err
	}
	defer r.s.w.hangTimer()()
	return r.Provider.Members(ctx, role)
}

func (r *pgRecorder) Grant(ctx context.Context, g providers.Grant) error {
	if err := r.s.record(fake.Call{Op: fake.OpGrant, Role: g.Role, Principal: r.s.person(g.Principal), Until: g.Until}); err != nil {
		return err
	}
	defer r.s.w.hangTimer()()
	return r.Provider.Grant(ctx, g)
}

func (r *pgRecorder) Revoke(ctx context.Context, role, principal string) error {
	if err := r.s.record(fake.Call{Op: fake.OpRevoke, Role: role, Principal: r.s.person(principal)}); err != nil {
		return err
	}
	defer r.s.w.hangTimer()()
	return r.Provider.Revoke(ctx, role, principal)
}

func (r *pgRecorder) CreateAccount(ctx context.Context, role, name string, until time.Time) (providers.Account, error) {
	if err := r.s.record(fake.Call{Op: opCreate, Role: role, Principal: name, Until: until}); err != nil {
		return providers.Account{}, err
	}
	a, err := r.Provider.CreateAccount(ctx, role, name, until)
	if err == nil {
		r.s.mu.Lock()
		r.s.accounts[name] = until
		r.s.secrets = append(r.s.secrets, a.Secret)
		r.s.mu.Unlock()
	}
	return a, err
}

func (r *pgRecorder) DropAccount(ctx context.Context, role, name string) error {
	if err := r.s.record(fake.Call{Op: opDrop, Role: role, Principal: name}); err != nil {
		return err
	}
	return r.Provider.DropAccount(ctx, role, name)
}

func (r *pgRecorder) Accounts(ctx context.Context, role string) ([]string, error) {
	if err := r.s.record(fake.Call{Op: opAccounts, Role: role}); err != nil {
		return nil, err
	}
	return r.Provider.Accounts(ctx, role)
}

// liveAccounts are the logins with the ephemeral role's prefix on the
// server now, whoever made them.
func (s *pgSystem) liveAccounts() []string {
	rows, err := s.admin.Query(context.Background(), `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1`, s.accountPrefix())
	if err != nil {
		s.w.t.Fatalf("reading pg_roles: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.w.t.Fatalf("reading pg_roles: %v", err)
	}
	return names
}

func (s *pgSystem) accountPrefix() string { return s.prefix + "_eph_" }
