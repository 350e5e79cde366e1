package local_test

// End-to-end tests of the kine DataStores, subtests of TestLocalPlane, whose plane is up with
// `--datastores all` (the real plugins, the machine's MariaDB and PostgreSQL, a NATS server of
// the plane's own in operator mode): per driver two TenantControlPlanes on the same server,
// each with a real kine sidecar (the binary hack/kube-bins.sh kine builds): Ready, kubectl
// through them, and the first tenant's kine credentials, taken from its datastore-config
// Secret and its pod, used with the backend's own client: they read the first tenant's data
// and are refused the second's; deleting them drops their databases, accounts and buckets.
// Before the plane's down, a tenant is left running on MySQL and on PostgreSQL: down drops
// them and the plane's own accounts from the servers (kineBeforeDown, kineAfterDown).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/conformance/kine"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

// kineDriver is a kine DataStore of the plane.
type kineDriver struct {
	ds, driver string
}

var kineDrivers = []kineDriver{
	{local.DataStoreMySQL, kamajiv1alpha1.DriverMySQL},
	{local.DataStorePostgreSQL, kamajiv1alpha1.DriverPostgreSQL},
	{local.DataStoreNATS, kamajiv1alpha1.DriverNATS},
}

func init() {
	registerPlaneSubtest("the kine DataStores are Ready, served by their plugins", testKineDataStores)
	registerPlaneSubtest("two tenants on each kine DataStore: Ready, kubectl, isolated, dropped on deletion", testKineTenants)
	registerPlaneSubtest("migrations and backups of a running tenant with 1,000 objects", testMigrations)
}

func testKineDataStores(t *testing.T, e *e2e) {
	for _, d := range kineDrivers {
		ds := &kamajiv1alpha1.DataStore{}
		if err := e.cl.Get(ctx(t), client.ObjectKey{Name: d.ds}, ds); err != nil {
			t.Fatal(err)
		}
		if ds.Spec.Driver != d.driver || !slices.Equal(ds.Spec.Endpoints, []string{kineEndpoint(d.ds)}) {
			t.Errorf("DataStore %s: driver %s, endpoints %v", d.ds, ds.Spec.Driver, ds.Spec.Endpoints)
		}
		if !conditionTrue(ds.Status.Conditions, "Ready") {
			t.Errorf("DataStore %s: %v", d.ds, ds.Status.Conditions)
		}
	}
	// The plane's own accounts exist, with a password.
	var n int
	db := mysqlRootDB(t)
	defer db.Close()
	if err := db.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = 'kamaji_local' AND authentication_string <> ''").Scan(&n); err != nil || n != 1 {
		t.Errorf("MariaDB account kamaji_local with a password: %d %v", n, err)
	}
	pg := postgresRootDB(t)
	defer pg.Close()
	if err := pg.QueryRow("SELECT COUNT(*) FROM pg_authid WHERE rolname = 'kamaji_local' AND rolpassword IS NOT NULL AND NOT rolsuper").Scan(&n); err != nil || n != 1 {
		t.Errorf("PostgreSQL role kamaji_local with a password: %d %v", n, err)
	}
}

func testKineTenants(t *testing.T, e *e2e) {
	kineBin := ensureKine(t) // built before the plane started: this only finds it
	for _, d := range kineDrivers {
		t.Run(d.ds, func(t *testing.T) {
			a, b := "kine-"+d.ds+"-a", "kine-"+d.ds+"-b"
			for _, name := range []string{a, b} {
				tcp := local.SampleTCP(name, "default")
				tcp.Spec.DataStore = d.ds
				if err := e.cl.Create(ctx(t), tcp); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for _, name := range []string{a, b} {
					_ = e.cl.Delete(context.Background(), &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}})
				}
			}()
			for _, name := range []string{a, b} {
				e.waitKineReady(t, name)
				tcp := e.tcp(t, name)
				e.kineTenants = append(e.kineTenants, kineTenantNames{d.ds, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername})
			}

			t.Run("Ready with a real kine sidecar", func(t *testing.T) {
				tcp := e.tcp(t, a)
				if st := tcp.Status.Storage; st.Driver != d.driver || st.DataStoreName != d.ds {
					t.Errorf("storage %+v", st)
				}
				pods := e.tenantPods(t, a)
				if len(pods) != 1 || !podReady(&pods[0]) {
					t.Fatalf("pods %v", podSummary(pods))
				}
				var pid int
				for _, cs := range pods[0].Status.ContainerStatuses {
					if cs.Name == "kine" {
						if !cs.Ready || cs.RestartCount > 0 {
							t.Errorf("kine container: ready=%v restarts=%d", cs.Ready, cs.RestartCount)
						}
						pid, _ = strconv.Atoi(strings.TrimPrefix(cs.ContainerID, "local://"))
					}
				}
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != kineBin {
					t.Errorf("the kine container (pid %d) runs %q, want %s", pid, exe, kineBin)
				}
			})

			t.Run("kubectl creates and reads back a ConfigMap", func(t *testing.T) {
				for _, name := range []string{a, b} {
					e.writeKubeconfig(t, name)
					e.kubectlT(t, name, "create", "configmap", "e2e", "--from-literal=greeting=hello-"+name)
					if got := e.kubectlT(t, name, "get", "configmap", "e2e", "-o", "jsonpath={.data.greeting}"); got != "hello-"+name {
						t.Errorf("%s: read back %q", name, got)
					}
				}
			})

			t.Run("the first tenant's kine credentials read its data, not the second's", func(t *testing.T) {
				own, other := e.kineSidecar(t, a), e.kineSidecar(t, b)
				const key = "/registry/configmaps/default/e2e"
				switch d.ds {
				case local.DataStoreMySQL:
					mysqlIsolation(t, own, other, key)
				case local.DataStorePostgreSQL:
					postgresIsolation(t, own, other, key)
				case local.DataStoreNATS:
					natsIsolation(t, own, other, key)
				}
			})

			t.Run("deleting the TCPs drops their databases, accounts, buckets", func(t *testing.T) {
				var names []kineTenantNames
				var buckets []string
				for _, name := range []string{a, b} {
					tcp := e.tcp(t, name)
					names = append(names, kineTenantNames{d.ds, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername})
					if d.ds == local.DataStoreNATS {
						buckets = append(buckets, e.kineSidecar(t, name).query.Get("bucket"))
					}
				}
				for _, name := range []string{a, b} {
					if err := e.cl.Delete(ctx(t), &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}); err != nil {
						t.Fatal(err)
					}
				}
				eventually(t, "the TCPs and their data to be gone", func() error {
					for _, name := range []string{a, b} {
						if err := e.cl.Get(ctx(t), client.ObjectKey{Namespace: "default", Name: name}, &kamajiv1alpha1.TenantControlPlane{}); !apierrors.IsNotFound(err) {
							return fmt.Errorf("TCP %s still there: %v", name, err)
						}
					}
					if d.ds == local.DataStoreNATS {
						left, err := e.natsBuckets(t)
						if err != nil {
							return err
						}
						for _, b := range buckets {
							if slices.Contains(left, b) {
								return fmt.Errorf("bucket %s still there", b)
							}
						}
						return nil
					}
					if left := serverLeftovers(t, names); len(left) > 0 {
						return fmt.Errorf("still on the server: %v", left)
					}
					return nil
				})
			})
		})
	}
}

// kineBeforeDown leaves a tenant running on the MySQL and on the PostgreSQL DataStore, for
// kineAfterDown to check that down dropped their databases and accounts itself.
func (e *e2e) kineBeforeDown(t *testing.T) {
	t.Helper()
	for _, ds := range []string{local.DataStoreMySQL, local.DataStorePostgreSQL} {
		tcp := local.SampleTCP("kine-left-"+ds, "default")
		tcp.Spec.DataStore = ds
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
	}
	for _, ds := range []string{local.DataStoreMySQL, local.DataStorePostgreSQL} {
		name := "kine-left-" + ds
		e.waitKineReady(t, name)
		tcp := e.tcp(t, name)
		n := kineTenantNames{ds, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername}
		if left := serverLeftovers(t, []kineTenantNames{n}); len(left) != 2 {
			t.Fatalf("tenant %s: want its database and account on the server, found %v", name, left)
		}
		e.kineTenants = append(e.kineTenants, n)
	}
}

// kineAfterDown checks, once down has run, that no database or account of a tenant the test
// made on a kine DataStore, nor the plane's own accounts, is left on the machine's servers.
func (e *e2e) kineAfterDown(t *testing.T) {
	t.Helper()
	if left := serverLeftovers(t, e.kineTenants); len(left) > 0 {
		t.Errorf("left on the machine's servers: %v", left)
	}
	var n int
	db := mysqlRootDB(t)
	defer db.Close()
	if err := db.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = 'kamaji_local'").Scan(&n); err != nil || n != 0 {
		t.Errorf("MariaDB account kamaji_local after down: %d %v", n, err)
	}
	pg := postgresRootDB(t)
	defer pg.Close()
	if err := pg.QueryRow("SELECT COUNT(*) FROM pg_roles WHERE rolname = 'kamaji_local'").Scan(&n); err != nil || n != 0 {
		t.Errorf("PostgreSQL role kamaji_local after down: %d %v", n, err)
	}
}

// ensureKine builds kine into the cache when missing (hack/kube-bins.sh kine) and returns it.
func ensureKine(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("KAMAJI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "kamaji")
	}
	bin := filepath.Join(cache, "kine", local.KineVersion, "bin", "kine")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("building kine %s (minutes, once)", local.KineVersion)
	if out, err := exec.Command(filepath.Join(root, "hack", "kube-bins.sh"), "kine").CombinedOutput(); err != nil {
		t.Fatalf("hack/kube-bins.sh kine: %v\n%s", err, out)
	}
	return bin
}

func kineEndpoint(ds string) string {
	port := map[string]string{local.DataStoreMySQL: "3306", local.DataStorePostgreSQL: "5432", local.DataStoreNATS: "4222"}[ds]
	return "10.244.0.1:" + port
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// waitKineReady waits up to 5 minutes (the machine is shared, two tenants start at once).
func (e *e2e) waitKineReady(t *testing.T, name string) {
	t.Helper()
	var last string
	if wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := e.cl.Get(ctx(t), client.ObjectKey{Namespace: "default", Name: name}, tcp); err == nil {
			if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s == kamajiv1alpha1.VersionReady {
				return true, nil
			}
			last = fmt.Sprintf("status %v, conditions %v", tcp.Status.Kubernetes.Version.Status, tcp.Status.Conditions)
		}
		return false, nil
	}) == nil {
		return
	}
	t.Fatalf("%s not Ready after 5 minutes: %s; pods %s", name, last, podSummary(e.tenantPods(t, name)))
}

// writeKubeconfig writes the tenant's super-admin kubeconfig where kubectlErr reads it, and
// waits until kubectl answers through it (kube-proxy programs the Service within a second or so
// of the TCP being Ready).
func (e *e2e) writeKubeconfig(t *testing.T, name string) {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.state, name+".kubeconfig"), s.Data["super-admin.conf"], 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "kubectl get ns against "+name, func() error {
		_, err := e.kubectlErr(name, "get", "ns")
		return err
	})
}

// kineSidecarCreds is a tenant's kine sidecar as the process node runs it: its endpoint with
// the Secret environment expanded, and its files (from the datastore-config Secret) written
// in a folder of the host that stands for /etc/kine.
type kineSidecarCreds struct {
	endpoint string
	query    url.Values // NATS endpoint parameters
	dir      string
}

func (e *e2e) kineSidecar(t *testing.T, name string) *kineSidecarCreds {
	t.Helper()
	pods := e.tenantPods(t, name)
	if len(pods) != 1 {
		t.Fatalf("%s: pods %v", name, podSummary(pods))
	}
	pod := pods[0]
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "kine" {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("%s: no kine container", name)
	}
	secret, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), name+"-datastore-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, v := range c.Env {
		switch {
		case v.ValueFrom == nil:
			env[v.Name] = v.Value
		case v.ValueFrom.SecretKeyRef != nil && v.ValueFrom.SecretKeyRef.Name == secret.Name:
			env[v.Name] = string(secret.Data[v.ValueFrom.SecretKeyRef.Key])
		}
	}
	sc := &kineSidecarCreds{dir: t.TempDir()}
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--endpoint="); ok {
			sc.endpoint = strings.ReplaceAll(node.Expand(v, env), kine.FilesDir, sc.dir)
		}
	}
	if sc.endpoint == "" {
		t.Fatalf("%s: the kine container has no --endpoint: %v", name, c.Args)
	}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil || m.MountPath != kine.FilesDir {
				continue
			}
			for _, it := range v.Secret.Items {
				p := filepath.Join(sc.dir, it.Path)
				data := []byte(strings.ReplaceAll(string(secret.Data[it.Key]), kine.FilesDir, sc.dir))
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if u, err := url.Parse(sc.endpoint); err == nil {
		sc.query = u.Query()
	}
	return sc
}

// ---- MariaDB ----

func mysqlRootDB(t *testing.T) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.Timeout = envOr("KAMAJI_MYSQL_ROOT_USER", "root"), os.Getenv("KAMAJI_MYSQL_ROOT_PASSWORD"), "tcp", envOr("KAMAJI_MYSQL_ADDR", "127.0.0.1:3306"), 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	if err := db.Ping(); err != nil {
		t.Fatalf("the machine's MariaDB (hack/services.sh starts it): %v", err)
	}
	return db
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// mysqlDSN is the sidecar's endpoint as kine reads it: a go-sql-driver DSN after mysql://.
func mysqlDSN(t *testing.T, sc *kineSidecarCreds) *mysql.Config {
	t.Helper()
	c, err := mysql.ParseDSN(strings.TrimPrefix(sc.endpoint, "mysql://"))
	if err != nil {
		t.Fatalf("kine endpoint: %v", err)
	}
	c.Timeout = 5 * time.Second
	return c
}

func mysqlIsolation(t *testing.T, own, other *kineSidecarCreds, key string) {
	mine, theirs := mysqlDSN(t, own), mysqlDSN(t, other)
	if mine.DBName == theirs.DBName || mine.User == theirs.User {
		t.Fatalf("the two tenants share a database or account: %s/%s, %s/%s", mine.User, mine.DBName, theirs.User, theirs.DBName)
	}
	conn, err := mysql.NewConnector(mine)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM kine WHERE name = ?", key).Scan(&n); err != nil || n == 0 {
		t.Fatalf("tenant %s reading %s in its database %s: %d rows, %v", mine.User, key, mine.DBName, n, err)
	}
	// Another database of the same server, with the first tenant's credentials.
	err = db.QueryRow("SELECT COUNT(*) FROM " + "`" + strings.ReplaceAll(theirs.DBName, "`", "``") + "`" + ".kine").Scan(&n)
	if !mysqlDenied(err) {
		t.Errorf("tenant %s reading database %s: %v, want access denied", mine.User, theirs.DBName, err)
	}
	cross := *mine
	cross.DBName = theirs.DBName
	conn, err = mysql.NewConnector(&cross)
	if err != nil {
		t.Fatal(err)
	}
	xdb := sql.OpenDB(conn)
	defer xdb.Close()
	if err := xdb.Ping(); !mysqlDenied(err) {
		t.Errorf("tenant %s connecting to database %s: %v, want access denied", mine.User, theirs.DBName, err)
	}
	rows, err := db.Query("SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		_ = rows.Scan(&name)
		if name == theirs.DBName {
			t.Errorf("tenant %s sees database %s", mine.User, name)
		}
	}
}

func mysqlDenied(err error) bool {
	var me *mysql.MySQLError
	// 1044: access denied to a database; 1142: to a table.
	return errors.As(err, &me) && (me.Number == 1044 || me.Number == 1142)
}

// ---- PostgreSQL ----

func postgresRootDB(t *testing.T) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "postgres", User: url.UserPassword(envOr("KAMAJI_POSTGRES_ROOT_USER", "postgres"), os.Getenv("KAMAJI_POSTGRES_ROOT_PASSWORD")),
		Host: envOr("KAMAJI_POSTGRES_ADDR", "127.0.0.1:5432"), Path: "/postgres", RawQuery: "connect_timeout=5"}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("the machine's PostgreSQL (hack/services.sh starts it): %v", err)
	}
	return db
}

func postgresIsolation(t *testing.T, own, other *kineSidecarCreds, key string) {
	mine, err := url.Parse(own.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := url.Parse(other.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if mine.Path == theirs.Path || mine.User.Username() == theirs.User.Username() {
		t.Fatalf("the two tenants share a database or role: %s, %s", mine.Redacted(), theirs.Redacted())
	}
	open := func(u url.URL) *sql.DB {
		q := u.Query()
		q.Set("connect_timeout", "5")
		u.RawQuery = q.Encode()
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open(*mine)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM kine WHERE name = $1", key).Scan(&n); err != nil || n == 0 {
		t.Fatalf("tenant %s reading %s in its database %s: %d rows, %v", mine.User.Username(), key, mine.Path, n, err)
	}
	cross := *mine
	cross.Path = theirs.Path
	xdb := open(cross)
	defer xdb.Close()
	err = xdb.Ping()
	if err == nil || !strings.Contains(err.Error(), "permission denied for database") {
		t.Errorf("tenant %s connecting to database %s: %v, want permission denied", mine.User.Username(), theirs.Path, err)
	}
}

// ---- NATS ----

// natsContext is the part of the sidecar's NATS context file used here.
type natsContext struct {
	URL         string `json:"url"`
	Creds       string `json:"creds"`
	InboxPrefix string `json:"inbox_prefix"`
}

func natsIsolation(t *testing.T, own, other *kineSidecarCreds, key string) {
	mine, theirs := own.query.Get("bucket"), other.query.Get("bucket")
	if mine == "" || mine == theirs {
		t.Fatalf("buckets %q and %q", mine, theirs)
	}
	data, err := os.ReadFile(own.query.Get("contextFile"))
	if err != nil {
		t.Fatal(err)
	}
	var nctx natsContext
	if err := json.Unmarshal(data, &nctx); err != nil {
		t.Fatal(err)
	}
	if nctx.Creds == "" {
		t.Fatalf("the sidecar's context has no user credentials (operator mode expected): %s", data)
	}
	asyncErr := make(chan error, 16)
	nc, err := nats.Connect(nctx.URL, nats.UserCredentials(nctx.Creds), nats.CustomInboxPrefix(nctx.InboxPrefix), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case asyncErr <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connecting with tenant credentials: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := kine.EncodeNATSKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(c, mine)
	if err != nil {
		t.Fatalf("opening its own bucket %s: %v", mine, err)
	}
	if _, err := kv.Get(c, encoded); err != nil {
		t.Fatalf("reading %s (%s) in its own bucket %s: %v", key, encoded, mine, err)
	}
	// The other tenant's bucket: the server refuses the request (a permissions violation,
	// reported apart from the request, which then goes unanswered).
	c2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if _, err := js.KeyValue(c2, theirs); err == nil {
		t.Errorf("tenant of %s opened bucket %s", mine, theirs)
	}
	if msg, err := js.Conn().Request("$JS.API.DIRECT.GET.KV_"+theirs+".$KV."+theirs+"."+encoded, nil, 2*time.Second); err == nil {
		t.Errorf("tenant of %s read %s in bucket %s: %q", mine, key, theirs, msg.Data)
	}
	select {
	case err := <-asyncErr:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("the server's answer: %v, want a permissions violation", err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("no permissions violation reported by the server")
	}
}

// natsBuckets lists the KV buckets of the plane's NATS account, as a user minted with the
// DataStore's signing key (the plugin's own way in).
func (e *e2e) natsBuckets(t *testing.T) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(e.state, "datastores", "nats.json"))
	if err != nil {
		return nil, err
	}
	var b struct {
		Account     string `json:"account"`
		SigningSeed string `json:"signingSeed"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	signer, err := nkeys.FromSeed([]byte(b.SigningSeed))
	if err != nil {
		return nil, err
	}
	user, _ := nkeys.CreateUser()
	upub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = b.Account
	ujwt, err := uc.Encode(signer)
	if err != nil {
		return nil, err
	}
	seed, _ := user.Seed()
	nc, err := nats.Connect("nats://"+kineEndpoint(local.DataStoreNATS), nats.UserJWTAndSeed(ujwt, string(seed)), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.KeyValueStoreNames(c)
	var out []string
	for n := range names.Name() {
		out = append(out, n)
	}
	return out, names.Error()
}

// ---- leftovers ----

type kineTenantNames struct{ ds, schema, user string }

// serverLeftovers lists what remains of the tenants on the machine's MariaDB and PostgreSQL.
func serverLeftovers(t *testing.T, tenants []kineTenantNames) []string {
	t.Helper()
	var left []string
	my, pg := mysqlRootDB(t), postgresRootDB(t)
	defer my.Close()
	defer pg.Close()
	count := func(db *sql.DB, q string, arg string) int {
		var n int
		if err := db.QueryRow(q, arg).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, tn := range tenants {
		switch tn.ds {
		case local.DataStoreMySQL:
			if count(my, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", tn.schema) > 0 {
				left = append(left, "MariaDB database "+tn.schema)
			}
			if count(my, "SELECT COUNT(*) FROM mysql.user WHERE User = ?", tn.user) > 0 {
				left = append(left, "MariaDB account "+tn.user)
			}
		case local.DataStorePostgreSQL:
			if count(pg, "SELECT COUNT(*) FROM pg_database WHERE datname = $1", tn.schema) > 0 {
				left = append(left, "PostgreSQL database "+tn.schema)
			}
			if count(pg, "SELECT COUNT(*) FROM pg_roles WHERE rolname = $1", tn.user) > 0 {
				left = append(left, "PostgreSQL role "+tn.user)
			}
		}
	}
	return left
}

func migrationState(tcp *kamajiv1alpha1.TenantControlPlane) string {
	if m := tcp.Status.Storage.Migration; m != nil {
		return fmt.Sprintf("phase %s %s->%s: %s", m.Phase, m.Source, m.Target, m.Message)
	}
	return "DataStore " + tcp.Status.Storage.DataStoreName
}
