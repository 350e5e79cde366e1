package local

// The plane's SQL and NATS DataStores (`kamaji local up --datastores ...`): tenants on the
// machine's MariaDB and PostgreSQL, and on a NATS server of the plane's own in operator mode,
// reached by their kube-apiservers through a kine sidecar (image rancher/kine:<version>-amd64,
// which the process node maps to the kine binary hack/kube-bins.sh builds).
//
// Pods live in their own network namespaces on the bridge, and the machine's services listen
// on loopback only: the plane relays <gateway>:3306 and <gateway>:5432 to them (`kamaji local
// forward`, a process of the plane). The plugins need a DataStore with a password: `up` creates
// an administrative account of the plane's own in each server (a random password kept in the
// state folder), `down` drops it, with the databases and accounts of the tenants still there.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
)

// KineVersion is the kine the sidecars run; keep in step with hack/kube-bins.sh (KINE_VERSION).
const KineVersion = "v0.17.5"

// KineImage is the sidecar image the plane's plugins return; the process node's image map
// (rancher/kine:*-amd64) runs $cache/kine/<version>/bin/kine for it.
const KineImage = "rancher/kine:" + KineVersion + "-amd64"

// Names of the DataStores `--datastores` accepts. etcd is the DataStore "default", always there.
const (
	DataStoreEtcd       = "etcd"
	DataStoreMySQL      = "mysql"
	DataStorePostgreSQL = "postgresql"
	DataStoreNATS       = "nats"
)

// AllDataStores is what `--datastores all` means.
var AllDataStores = []string{DataStoreEtcd, DataStoreEtcd2, DataStoreMySQL, DataStorePostgreSQL, DataStoreNATS}

// kineAdmin is the administrative account the plane creates in MariaDB and PostgreSQL.
const kineAdmin = "kamaji_local"

// kineStore is a DataStore served through kine.
type kineStore struct {
	name   string // DataStore name, --datastores value
	driver string // spec.driver
	plugin string // plugins/<plugin>, binary kamaji-<plugin>
	port   int    // on the gateway
	// service is where the machine's server listens (empty: the plane runs its own).
	service string
}

func kineStores() []kineStore {
	return []kineStore{
		{name: DataStoreMySQL, driver: kamajiv1alpha1.DriverMySQL, plugin: "datastore-mysql", port: 3306, service: envOr("KAMAJI_MYSQL_ADDR", "127.0.0.1:3306")},
		{name: DataStorePostgreSQL, driver: kamajiv1alpha1.DriverPostgreSQL, plugin: "datastore-postgres", port: 5432, service: envOr("KAMAJI_POSTGRES_ADDR", "127.0.0.1:5432")},
		{name: DataStoreNATS, driver: kamajiv1alpha1.DriverNATS, plugin: "datastore-nats", port: 4222},
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ParseDataStores checks a --datastores list ("etcd,mysql", "all").
func ParseDataStores(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, d := range strings.Split(item, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "":
			case d == "all":
				out = append(out, AllDataStores...)
			case slices.Contains(AllDataStores, d):
				out = append(out, d)
			default:
				return nil, fmt.Errorf("--datastores: unknown DataStore %q (known: %s, all)", d, strings.Join(AllDataStores, ", "))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// KineBin is the kine binary in the cache.
func (c *Config) KineBin() string { return filepath.Join(c.Cache, "kine", KineVersion, "bin", "kine") }

// kineBackend is what `up` set up for a kine DataStore, kept in <state>/datastores/<name>.json
// so that a later `up` reuses it and `down` removes it.
type kineBackend struct {
	Name string `json:"name"`
	// SQL: the administrative account and its password.
	Admin    string `json:"admin,omitempty"`
	Password string `json:"password,omitempty"`
	// NATS: the account's public key and the seed of its signing key.
	Account     string `json:"account,omitempty"`
	SigningSeed string `json:"signingSeed,omitempty"`
}

func (p *Plane) backendPath(name string) string { return p.cfg.path("datastores", name+".json") }

func (p *Plane) loadBackend(name string) (*kineBackend, error) {
	data, err := os.ReadFile(p.backendPath(name))
	if err != nil {
		return nil, err
	}
	b := &kineBackend{}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("%s: %w", p.backendPath(name), err)
	}
	return b, nil
}

func (p *Plane) saveBackend(b *kineBackend) error {
	if err := os.MkdirAll(p.cfg.path("datastores"), 0o700); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(b, "", "  ")
	return os.WriteFile(p.backendPath(b.Name), data, 0o600)
}

// activeKineStores are the kine DataStores of this plane: those asked for, and those an
// earlier `up` set up (a plane never loses a DataStore before `down`).
func (p *Plane) activeKineStores() []kineStore {
	var out []kineStore
	for _, s := range kineStores() {
		if slices.Contains(p.cfg.DataStores, s.name) || fileExists(p.backendPath(s.name)) {
			out = append(out, s)
		}
	}
	return out
}

func (p *Plane) kinePluginPath(s kineStore) string {
	return filepath.Join(p.cfg.BinDir, "kamaji-"+s.plugin)
}

// kineBackendStages set up the servers and their relays, before the manager starts.
func (p *Plane) kineBackendStages() []stage {
	stores := p.activeKineStores()
	if len(stores) == 0 {
		return nil
	}
	stages := []stage{{"kine " + KineVersion, func(context.Context) (string, error) {
		missing := []string{}
		for _, f := range append([]string{p.cfg.KineBin()}, kineMap(stores, p.kinePluginPath)...) {
			if !fileExists(f) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("missing %s: run `make up DATASTORES=%s` (it builds kine with hack/kube-bins.sh kine, and the plugins)",
				strings.Join(missing, ", "), strings.Join(append([]string{DataStoreEtcd}, kineMap(stores, func(s kineStore) string { return s.name })...), ","))
		}
		return p.cfg.KineBin() + " for " + KineImage, nil
	}}}
	for _, s := range stores {
		switch s.name {
		case DataStoreMySQL:
			stages = append(stages, stage{"datastore mysql (MariaDB)", func(ctx context.Context) (string, error) { return p.stageMySQL(ctx, s) }})
		case DataStorePostgreSQL:
			stages = append(stages, stage{"datastore postgresql", func(ctx context.Context) (string, error) { return p.stagePostgres(ctx, s) }})
		case DataStoreNATS:
			stages = append(stages, stage{"datastore nats (operator mode)", func(ctx context.Context) (string, error) { return p.stageNATS(ctx, s) }})
		}
	}
	return stages
}

// kineDataStoreStages create the DataStores, once the manager runs.
func (p *Plane) kineDataStoreStages() []stage {
	var stages []stage
	for _, s := range p.activeKineStores() {
		stages = append(stages, stage{"DataStore " + s.name, func(ctx context.Context) (string, error) { return p.stageKineDataStore(ctx, s) }})
	}
	return stages
}

func kineMap[T any](stores []kineStore, f func(kineStore) T) []T {
	out := make([]T, 0, len(stores))
	for _, s := range stores {
		out = append(out, f(s))
	}
	return out
}

// kinePlugins are the kamaji.yaml entries of the kine DataStores' plugins, pinned by sha256.
func (p *Plane) kinePlugins() ([]settings.Plugin, error) {
	var out []settings.Plugin
	for _, s := range p.activeKineStores() {
		path := p.kinePluginPath(s)
		sum, err := sdk.FileSHA256(path)
		if err != nil {
			return nil, err
		}
		out = append(out, settings.Plugin{
			Kind: settings.KindDataStore, Name: strings.TrimPrefix(s.plugin, "datastore-"), Path: path, SHA256: sum,
			Args: []string{"--kine-image=" + KineImage}, Drivers: []string{s.driver},
		})
	}
	return out, nil
}

func (p *Plane) gatewayAddr(port int) string {
	return net.JoinHostPort(p.cfg.Gateway, strconv.Itoa(port))
}

// forwarder relays <gateway>:<port> to the machine's server.
func (p *Plane) forwarder(s kineStore) component {
	listen := p.gatewayAddr(s.port)
	return component{
		name: "forward-" + s.name, bin: p.cfg.SelfExe,
		args: []string{"local", "forward", listen + "=" + s.service},
		ready: func(ctx context.Context) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", listen)
			if err != nil {
				return err
			}
			return c.Close()
		},
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sqlBackend loads the plane's account for a SQL server, or makes a new password for it.
func (p *Plane) sqlBackend(name string) (*kineBackend, error) {
	b, err := p.loadBackend(name)
	if errors.Is(err, os.ErrNotExist) {
		b, err = &kineBackend{Name: name, Admin: kineAdmin, Password: randomHex(16)}, nil
	}
	return b, err
}

// mysqlRoot opens the machine's MariaDB as its administrator: root over TCP without a password
// unless $KAMAJI_MYSQL_ROOT_USER / $KAMAJI_MYSQL_ROOT_PASSWORD say otherwise (as the plugin's
// tests).
func mysqlRoot(ctx context.Context, addr string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd = envOr("KAMAJI_MYSQL_ROOT_USER", "root"), os.Getenv("KAMAJI_MYSQL_ROOT_PASSWORD")
	c.Net, c.Addr, c.Timeout = "tcp", addr, 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("MariaDB at %s as %s: %w (is it running? hack/services.sh starts it)", addr, c.User, err)
	}
	return db, nil
}

// postgresRoot opens the machine's PostgreSQL as its superuser: postgres over TCP unless
// $KAMAJI_POSTGRES_ROOT_USER / $KAMAJI_POSTGRES_ROOT_PASSWORD say otherwise.
func postgresRoot(ctx context.Context, addr string) (*sql.DB, error) {
	user := envOr("KAMAJI_POSTGRES_ROOT_USER", "postgres")
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, os.Getenv("KAMAJI_POSTGRES_ROOT_PASSWORD")), Host: addr, Path: "/postgres", RawQuery: "sslmode=prefer&connect_timeout=5"}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("PostgreSQL at %s as %s: %w (is it running? hack/services.sh starts it)", addr, user, err)
	}
	return db, nil
}

func quoteMySQL(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quotePG(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// mysqlAdminAccount is the plane's account: the relay connects from loopback.
const mysqlAdminHost = "127.0.0.1"

// mysqlAdminPrivileges is the least the plugin needs (docs/datastores/mysql.md).
const mysqlAdminPrivileges = "CREATE USER, CREATE, DROP, SELECT, INSERT, UPDATE, DELETE, INDEX, ALTER, PROCESS, CONNECTION ADMIN"

// stageMySQL creates (or updates) the plane's account in MariaDB and starts its relay.
func (p *Plane) stageMySQL(ctx context.Context, s kineStore) (string, error) {
	b, err := p.sqlBackend(s.name)
	if err != nil {
		return "", err
	}
	db, err := mysqlRoot(ctx, s.service)
	if err != nil {
		return "", err
	}
	defer db.Close()
	acct := quoteMySQL(b.Admin) + "@" + quoteMySQL(mysqlAdminHost)
	// The password is hex: a safe literal.
	for _, stmt := range []string{
		"CREATE USER IF NOT EXISTS " + acct + " IDENTIFIED BY '" + b.Password + "'",
		"ALTER USER " + acct + " IDENTIFIED BY '" + b.Password + "'",
		"GRANT " + mysqlAdminPrivileges + " ON *.* TO " + acct + " WITH GRANT OPTION",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("MariaDB: %s: %w", strings.SplitN(stmt, " IDENTIFIED", 2)[0], err)
		}
	}
	if err := p.saveBackend(b); err != nil {
		return "", err
	}
	if _, err := p.ensure(ctx, p.forwarder(s)); err != nil {
		return "", err
	}
	return fmt.Sprintf("MariaDB %s relayed at %s, account %s", s.service, p.gatewayAddr(s.port), acct), nil
}

// stagePostgres creates (or updates) the plane's role in PostgreSQL and starts its relay.
func (p *Plane) stagePostgres(ctx context.Context, s kineStore) (string, error) {
	b, err := p.sqlBackend(s.name)
	if err != nil {
		return "", err
	}
	db, err := postgresRoot(ctx, s.service)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", b.Admin).Scan(&exists); err != nil {
		return "", fmt.Errorf("PostgreSQL: %w", err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	if _, err := db.ExecContext(ctx, verb+" ROLE "+quotePG(b.Admin)+" LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD '"+b.Password+"'"); err != nil {
		return "", fmt.Errorf("PostgreSQL: %s ROLE %s: %w", verb, b.Admin, err)
	}
	if err := p.saveBackend(b); err != nil {
		return "", err
	}
	if _, err := p.ensure(ctx, p.forwarder(s)); err != nil {
		return "", err
	}
	return fmt.Sprintf("PostgreSQL %s relayed at %s, role %s", s.service, p.gatewayAddr(s.port), b.Admin), nil
}

// natsServerBin is the machine's nats-server ($KAMAJI_NATS_SERVER overrides).
func natsServerBin() string {
	if b := os.Getenv("KAMAJI_NATS_SERVER"); b != "" {
		return b
	}
	for _, b := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if fileExists(b) {
			return b
		}
	}
	return "nats-server"
}

// stageNATS starts the plane's own nats-server in operator mode (decentralized JWT
// authentication, memory resolver, JetStream), listening on the gateway: the plugin's
// multi-tenant mode needs an account signing key, and the machine's server runs without
// authentication. The keys are made once and kept in the state folder.
func (p *Plane) stageNATS(ctx context.Context, s kineStore) (string, error) {
	dir := p.cfg.path("nats")
	conf := filepath.Join(dir, "server.conf")
	b, err := p.loadBackend(s.name)
	if errors.Is(err, os.ErrNotExist) || !fileExists(conf) {
		b, err = p.natsSetup(s)
	}
	if err != nil {
		return "", err
	}
	c := component{
		name: "nats-server", bin: natsServerBin(), args: []string{"-c", conf},
		ready: func(ctx context.Context) error {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", p.gatewayAddr(s.port))
			if err != nil {
				return err
			}
			return conn.Close()
		},
	}
	running, err := p.ensure(ctx, c)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("nats://%s, JetStream, account %s…", p.gatewayAddr(s.port), b.Account[:8])
	if running {
		detail += ", already running"
	}
	return detail, nil
}

func (p *Plane) natsSetup(s kineStore) (*kineBackend, error) {
	dir := p.cfg.path("nats")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	okp, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	opub, _ := okp.PublicKey()
	sys, _ := nkeys.CreateAccount()
	spub, _ := sys.PublicKey()
	sc := jwt.NewAccountClaims(spub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(okp)
	if err != nil {
		return nil, err
	}
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "kamaji-local"
	oc.SystemAccount = spub
	ojwt, err := oc.Encode(okp)
	if err != nil {
		return nil, err
	}
	acc, _ := nkeys.CreateAccount()
	apub, _ := acc.PublicKey()
	sig, _ := nkeys.CreateAccount()
	sigpub, _ := sig.PublicKey()
	sigseed, _ := sig.Seed()
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "KAMAJI"
	ac.SigningKeys.Add(sigpub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
	ajwt, err := ac.Encode(okp)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.jwt"), []byte(ojwt), 0o600); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`# Written by kamaji local up: the local plane's NATS, operator mode.
server_name: kamaji-local
listen: %q
jetstream { store_dir: %q }
operator: %q
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
}
`, p.gatewayAddr(s.port), filepath.Join(dir, "jetstream"), filepath.Join(dir, "operator.jwt"), spub, apub, ajwt, spub, sjwt)
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	b := &kineBackend{Name: s.name, Account: apub, SigningSeed: string(sigseed)}
	return b, p.saveBackend(b)
}

// stageKineDataStore creates (or updates) the DataStore and waits until it is Ready.
func (p *Plane) stageKineDataStore(ctx context.Context, s kineStore) (string, error) {
	b, err := p.loadBackend(s.name)
	if err != nil {
		return "", err
	}
	auth := &kamajiv1alpha1.BasicAuth{
		Username: kamajiv1alpha1.ContentRef{Content: []byte(b.Admin)},
		Password: kamajiv1alpha1.ContentRef{Content: []byte(b.Password)},
	}
	if s.name == DataStoreNATS {
		auth.Username.Content, auth.Password.Content = []byte(b.Account), []byte(b.SigningSeed)
	}
	spec := kamajiv1alpha1.DataStoreSpec{Driver: s.driver, Endpoints: []string{p.gatewayAddr(s.port)}, BasicAuth: auth}
	if err := p.applyDataStore(ctx, s.name, spec); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s at %s", s.driver, p.gatewayAddr(s.port)), nil
}

// applyDataStore creates or updates a DataStore and waits until the manager reports it Ready.
func (p *Plane) applyDataStore(ctx context.Context, name string, spec kamajiv1alpha1.DataStoreSpec) error {
	cur := &kamajiv1alpha1.DataStore{}
	err := p.cl.Get(ctx, client.ObjectKey{Name: name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		err = p.cl.Create(ctx, &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
	case err == nil:
		cur.Spec = spec
		err = p.cl.Update(ctx, cur)
	}
	if err != nil {
		return err
	}
	err = pollReady(ctx, 60*time.Second, nil, func(ctx context.Context) error {
		got := &kamajiv1alpha1.DataStore{}
		if err := p.cl.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
			return err
		}
		if meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") && got.Status.ObservedGeneration >= got.Generation {
			return nil
		}
		return fmt.Errorf("DataStore %s is not Ready: %v", name, got.Status.Conditions)
	})
	if err != nil {
		return p.managerError(ctx, err)
	}
	return nil
}

// kineTenant is a tenant's database and account on one of the machine's servers.
type kineTenant struct{ store, schema, user string }

// kineDownPrepare lists, while the admin apiserver still answers, the tenants the plane's
// TenantControlPlanes have on the machine's MariaDB and PostgreSQL: `down` drops them.
func (p *Plane) kineDownPrepare(ctx context.Context) []kineTenant {
	var sqlStores []string
	for _, name := range []string{DataStoreMySQL, DataStorePostgreSQL} {
		if fileExists(p.backendPath(name)) {
			sqlStores = append(sqlStores, name)
		}
	}
	if len(sqlStores) == 0 {
		return nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", p.cfg.AdminKubeconfig())
	if err != nil {
		return nil
	}
	rc.Timeout = 5 * time.Second
	cl, err := client.New(rc, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil
	}
	var list kamajiv1alpha1.TenantControlPlaneList
	if err := cl.List(ctx, &list); err != nil {
		fmt.Fprintf(p.cfg.Out, "  cannot list the TenantControlPlanes (%v): their databases on MariaDB may stay (PostgreSQL's are found by role)\n", err)
		return nil
	}
	var out []kineTenant
	for _, tcp := range list.Items {
		ds := tcp.Status.Storage.DataStoreName
		if ds == "" {
			ds = tcp.Spec.DataStore
		}
		if !slices.Contains(sqlStores, ds) {
			continue
		}
		for _, t := range []kineTenant{
			{ds, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername},
			{ds, tcp.Status.Storage.Setup.Schema, tcp.Status.Storage.Setup.User},
		} {
			if t.schema != "" && t.user != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// kineDown, once the plane's processes are stopped, drops from the machine's servers the
// tenants' databases and accounts and the plane's administrative accounts. The NATS server's
// data is in the state folder.
func (p *Plane) kineDown(ctx context.Context, tenants []kineTenant) []error {
	var errs []error
	var removed []string
	for _, s := range kineStores() {
		b, err := p.loadBackend(s.name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var mine []kineTenant
		for _, t := range tenants {
			if t.store == s.name {
				mine = append(mine, t)
			}
		}
		var n int
		switch s.name {
		case DataStoreMySQL:
			n, err = mysqlDown(ctx, s.service, b, mine)
		case DataStorePostgreSQL:
			n, err = postgresDown(ctx, s.service, b, mine)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, fmt.Sprintf("%s: account %s and %d tenants", s.name, b.Admin, n))
	}
	if len(removed) > 0 {
		fmt.Fprintf(p.cfg.Out, "  removed from the machine's servers: %s\n", strings.Join(removed, "; "))
	}
	return errs
}

func mysqlDown(ctx context.Context, addr string, b *kineBackend, tenants []kineTenant) (int, error) {
	db, err := mysqlRoot(ctx, addr)
	if err != nil {
		return 0, fmt.Errorf("removing the plane's account %s and its tenants' databases: %w", b.Admin, err)
	}
	defer db.Close()
	var errs []error
	for _, t := range tenants {
		// The plugin's tenant accounts are `user`@`%` (no tenantHost parameter on the plane).
		for _, stmt := range []string{"DROP DATABASE IF EXISTS " + quoteMySQL(t.schema), "DROP USER IF EXISTS " + quoteMySQL(t.user) + "@'%'"} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				errs = append(errs, fmt.Errorf("MariaDB: %s: %w", stmt, err))
			}
		}
		// The plugin's owner records (kamaji_registry, shared by the server's DataStores): left
		// there, they would refuse the next plane's tenants of the same names (other uids).
		_, err := db.ExecContext(ctx, "DELETE FROM `kamaji_registry`.`owners` WHERE (kind = 'schema' AND name = ?) OR (kind = 'user' AND name = ?)", t.schema, t.user)
		var me *mysql.MySQLError
		if err != nil && !(errors.As(err, &me) && (me.Number == 1049 || me.Number == 1146)) { // no registry yet
			errs = append(errs, fmt.Errorf("MariaDB: owner records of %s: %w", t.schema, err))
		}
	}
	if _, err := db.ExecContext(ctx, "DROP USER IF EXISTS "+quoteMySQL(b.Admin)+"@"+quoteMySQL(mysqlAdminHost)); err != nil {
		errs = append(errs, fmt.Errorf("MariaDB: drop user %s: %w", b.Admin, err))
	}
	return len(tenants), errors.Join(errs...)
}

func postgresDown(ctx context.Context, addr string, b *kineBackend, tenants []kineTenant) (int, error) {
	db, err := postgresRoot(ctx, addr)
	if err != nil {
		return 0, fmt.Errorf("removing the plane's role %s and its tenants' databases: %w", b.Admin, err)
	}
	defer db.Close()
	roles := map[string]bool{}
	for _, t := range tenants {
		roles[t.user] = true
	}
	// The plugin makes the administrative role a member of every tenant role it creates: those
	// are the plane's tenants, whether or not their TenantControlPlanes could be listed.
	rows, err := db.QueryContext(ctx, `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
		JOIN pg_roles a ON a.oid = m.member WHERE a.rolname = $1`, b.Admin)
	if err == nil {
		for rows.Next() {
			var r string
			if rows.Scan(&r) == nil {
				roles[r] = true
			}
		}
		rows.Close()
	}
	dbs := map[string]bool{}
	for _, t := range tenants {
		dbs[t.schema] = true
	}
	for r := range roles {
		owned, err := db.QueryContext(ctx, "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1", r)
		if err != nil {
			continue
		}
		for owned.Next() {
			var d string
			if owned.Scan(&d) == nil {
				dbs[d] = true
			}
		}
		owned.Close()
	}
	var errs []error
	for d := range dbs {
		if slices.Contains([]string{"postgres", "template0", "template1"}, d) {
			continue
		}
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quotePG(d)+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("PostgreSQL: drop database %s: %w", d, err))
		}
	}
	for r := range roles {
		if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+quotePG(r)); err != nil {
			errs = append(errs, fmt.Errorf("PostgreSQL: drop role %s: %w", r, err))
		}
	}
	// The plugin's owner registry is a database of the administrative role's own
	// (kamaji_registry_<role>): it goes with the role, which cannot be dropped while it owns it.
	owned, err := db.QueryContext(ctx, "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)", b.Admin)
	if err == nil {
		var names []string
		for owned.Next() {
			var d string
			if owned.Scan(&d) == nil {
				names = append(names, d)
			}
		}
		owned.Close()
		for _, d := range names {
			if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quotePG(d)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("PostgreSQL: drop database %s: %w", d, err))
			}
		}
	}
	if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+quotePG(b.Admin)); err != nil {
		errs = append(errs, fmt.Errorf("PostgreSQL: drop role %s: %w", b.Admin, err))
	}
	return len(roles), errors.Join(errs...)
}
