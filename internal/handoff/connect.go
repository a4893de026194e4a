package handoff

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/gitgrant/gitgrant/providers"
)

// Connection kinds (providers.Connection.Kind).
const (
	KindPostgres = "postgres"
	KindMySQL    = "mysql"
)

// DSN is the account's connection URL, password included:
// postgres://user:password@host:port/database for PostgreSQL (libpq, psql,
// pgx and most drivers read it) and mysql://user:password@host:port/database
// for MySQL and MariaDB (mysqlsh and most ORMs do).
func DSN(a providers.Account) string {
	scheme := "postgres"
	if a.Connect.Kind == KindMySQL {
		scheme = "mysql"
	}
	host := a.Connect.Host
	if a.Connect.Port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(a.Connect.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(a.Name, a.Secret), Host: host}
	if a.Connect.Database != "" {
		u.Path = "/" + a.Connect.Database
	}
	return u.String()
}

// Command is a shell command line that opens a session as the account
// with the system's own client: psql for PostgreSQL, mariadb for MySQL
// and MariaDB. The password is in it (PGPASSWORD, --password): paste it,
// do not keep it.
func Command(a providers.Account) string {
	c := a.Connect
	var args []string
	if c.Kind == KindMySQL {
		args = []string{"mariadb", "--host=" + c.Host, "--user=" + a.Name, "--password=" + a.Secret}
		if c.Port != 0 {
			args = append(args, "--port="+strconv.Itoa(c.Port))
		}
		if c.Database != "" {
			args = append(args, "--database="+c.Database)
		}
		return shellJoin(args)
	}
	args = []string{"psql", "--host=" + c.Host, "--username=" + a.Name}
	if c.Port != 0 {
		args = append(args, "--port="+strconv.Itoa(c.Port))
	}
	if c.Database != "" {
		args = append(args, "--dbname="+c.Database)
	}
	return "PGPASSWORD=" + shellQuote(a.Secret) + " " + shellJoin(args)
}

func shellJoin(args []string) string {
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
