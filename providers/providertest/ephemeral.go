package providertest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"errors"
	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/schema"
)

// createThenDieEnv makes the test binary the helper process of
// CreatedByKilledProcess; its value is the helper's arguments, one a line.
const createThenDieEnv = "GITGRANT_TEST_CREATE_THEN_DIE"

// CreateThenDie is the body of a test named TestHelperCreateThenDie: run
// by CreatedByKilledProcess, the process opens a provider with open (from
// the arguments it was given), creates an account for role "reader", says
// its name and kills itself (SIGKILL) before it can record anything. Run
// as an ordinary test, it is skipped.
func CreateThenDie(t *testing.T, open func(args []string) (providers.Ephemeral, error)) {
	spec := os.Getenv(createThenDieEnv)
	if spec == "" {
		t.Skip("a helper process of CreatedByKilledProcess")
	}
	p, err := open(strings.Split(spec, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.CreateAccount(context.Background(), "reader", gitgrant.NewAccountName(p.AccountPrefix("reader")), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("created " + a.Name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// CreatedByKilledProcess runs the test binary's TestHelperCreateThenDie
// with args, checks that it was killed, and returns the name of the
// account it created: an orphan that no ledger knows of.
func CreatedByKilledProcess(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCreateThenDie$", "-test.count=1")
	cmd.Env = append(os.Environ(), createThenDieEnv+"="+strings.Join(args, "\n"))
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the helper was not killed: %v\n%s", err, out)
	}
	var created string
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		if n, ok := strings.CutPrefix(sc.Text(), "created "); ok {
			created = n
		}
	}
	if created == "" {
		t.Fatalf("the helper created nothing:\n%s", out)
	}
	return created
}

// CheckOrphanDropped checks that p, a provider that knows nothing of the
// process that made orphan, lists it alone among role's accounts (logins
// that only look like accounts are never listed) and drops it.
func CheckOrphanDropped(t *testing.T, p providers.Ephemeral, role, orphan string) {
	t.Helper()
	ctx := t.Context()
	accounts, err := p.Accounts(ctx, role)
	if err != nil || !slices.Equal([]string{orphan}, accounts) {
		t.Fatalf("Accounts = %v, %v; want the orphan [%s] alone", accounts, err, orphan)
	}
	if err := p.DropAccount(ctx, role, orphan); err != nil {
		t.Fatal(err)
	}
	if accounts, err := p.Accounts(ctx, role); err != nil || len(accounts) != 0 {
		t.Errorf("after the drift drop: %v, %v", accounts, err)
	}
}

// CheckRefusesOtherNames checks that p refuses to create or drop, as
// ErrInvalidName, each of names for role "reader" (an ephemeral role):
// names that are not one of the role's accounts, so that a mistake can
// never drop a person's own login. It also checks that p creates no
// account for role "writer" (not ephemeral, named writerAccount), nor one
// that has expired already.
func CheckRefusesOtherNames(t *testing.T, p providers.Ephemeral, names []string, writerAccount string) {
	t.Helper()
	ctx := t.Context()
	for _, name := range names {
		if _, err := p.CreateAccount(ctx, "reader", name, time.Now().Add(time.Hour)); !errors.Is(err, providers.ErrInvalidName) {
			t.Errorf("CreateAccount(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := p.DropAccount(ctx, "reader", name); !errors.Is(err, providers.ErrInvalidName) {
			t.Errorf("DropAccount(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := p.CreateAccount(ctx, "writer", writerAccount, time.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "not ephemeral") {
		t.Errorf("an account for a role that is not ephemeral: %v", err)
	}
	if _, err := p.CreateAccount(ctx, "reader", p.AccountPrefix("reader")+"abc", time.Now().Add(-time.Minute)); err == nil {
		t.Error("an account that expired already was created")
	}
}

// CreateAccount creates an account of role until then with p, named as
// gitgrant names them, and fails the test when p cannot, or gives back
// another name or less than a full password.
func CreateAccount(t testing.TB, p providers.Ephemeral, role string, until time.Time) providers.Account {
	t.Helper()
	name := gitgrant.NewAccountName(p.AccountPrefix(role))
	a, err := p.CreateAccount(t.Context(), role, name, until)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if a.Name != name || len(a.Secret) != providers.PasswordLen {
		t.Fatalf("CreateAccount(%s) = %v with a %d-character secret", name, a, len(a.Secret))
	}
	return a
}

// CheckLoginLimit checks that the configuration schema limits the account
// names of typ's ephemeral roles to maxLogin, the provider's own limit.
func CheckLoginLimit(t testing.TB, typ string, maxLogin int) {
	t.Helper()
	if n, ok := schema.EphemeralMaxLogin(typ); !ok || n != maxLogin {
		t.Errorf("schema says %d (%v), the provider %d", n, ok, maxLogin)
	}
}
