package pluginhost

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
)

// The test plugin of the sdk serves a fake "fake" driver; -protocol makes it speak another
// transport version.
var (
	buildOnce sync.Once
	pluginBin string
	buildErr  error
)

func testPlugin(t *testing.T) (path, sha string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kamaji-pluginhost-")
		if err != nil {
			buildErr = err
			return
		}
		pluginBin = filepath.Join(dir, "testplugin")
		out, err := exec.Command("go", "build", "-o", pluginBin, "github.com/openhcp/kamaji/sdk/internal/testplugin").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	sum, err := sdk.FileSHA256(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	return pluginBin, sum
}

func entry(path, sha string, args ...string) settings.Plugin {
	return settings.Plugin{Kind: settings.KindDataStore, Name: "fake", Path: path, SHA256: sha, Args: args, Drivers: []string{"fake"}}
}

func expectReason(t *testing.T, err error, reason, mention string) {
	t.Helper()
	pe, ok := AsError(err)
	if !ok {
		t.Fatalf("want a plugin error with reason %s, got %v", reason, err)
	}
	if pe.Reason != reason || !strings.Contains(pe.Error(), mention) {
		t.Fatalf("got reason %s (%v), want %s mentioning %q", pe.Reason, pe, reason, mention)
	}
}

func TestStartsAndRecordsIdentity(t *testing.T) {
	path, sha := testPlugin(t)
	h := New([]settings.Plugin{entry(path, sha)}, Options{})
	defer h.Close()
	c, st, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "fake" || st.Version != "0.0.1" || st.Protocol != sdk.ProtocolVersion {
		t.Fatalf("status %+v", st)
	}
	again, _, err := h.DataStore(context.Background(), "fake")
	if err != nil || again != c {
		t.Fatalf("a running plugin must be reused: %v", err)
	}
	if err := h.Probe(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
}

func TestFailureModesAreClearAndQuick(t *testing.T) {
	path, sha := testPlugin(t)
	for name, tc := range map[string]struct {
		plugin  settings.Plugin
		driver  string
		reason  string
		mention string
	}{
		"driver not configured": {entry(path, sha), "TiKV", ReasonNotConfigured, `driver "TiKV"`},
		"missing binary":        {entry("/nonexistent/kamaji-datastore-x", sha), "fake", ReasonBinaryMissing, "/nonexistent/kamaji-datastore-x"},
		"wrong sha256":          {entry(path, strings.Repeat("0", 64)), "fake", ReasonChecksumMismatch, "sha256"},
		"unknown protocol":      {entry(path, sha, "-protocol=99"), "fake", ReasonProtocolMismatch, "protocol"},
		"never answers":         {entry("/bin/sleep", mustSHA(t, "/bin/sleep"), "3600"), "fake", ReasonHandshakeFailed, "sleep"},
		"driver mismatch":       {settings.Plugin{Kind: settings.KindDataStore, Name: "fake", Path: path, SHA256: sha, Drivers: []string{"etcd"}}, "etcd", ReasonDriverMismatch, `lists driver "etcd"`},
	} {
		t.Run(name, func(t *testing.T) {
			h := New([]settings.Plugin{tc.plugin}, Options{StartTimeout: 3 * time.Second})
			defer h.Close()
			_, _, err := h.DataStore(context.Background(), tc.driver)
			expectReason(t, err, tc.reason, tc.mention)
			if tc.reason != ReasonNotConfigured {
				if pe, _ := AsError(err); pe.RetryAfter <= 0 {
					t.Errorf("a failed start must back off, RetryAfter=%s", pe.RetryAfter)
				}
			}
		})
	}
}

func mustSHA(t *testing.T, path string) string {
	s, err := sdk.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCrashedPluginIsRestartedWithBackoff(t *testing.T) {
	path, sha := testPlugin(t)
	now := time.Now()
	clock := func() time.Time { return now }
	h := New([]settings.Plugin{entry(path, sha)}, Options{Now: clock})
	defer h.Close()
	c, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return c.Exited(), nil }); err != nil {
		t.Fatal("the killed plugin was never seen as exited")
	}
	_, _, err = h.DataStore(context.Background(), "fake")
	expectReason(t, err, ReasonRestarting, "exited")
	pe, _ := AsError(err)
	if pe.RetryAfter <= 0 {
		t.Fatalf("restart must wait for the backoff, RetryAfter=%s", pe.RetryAfter)
	}
	now = now.Add(pe.RetryAfter)
	c2, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatalf("after the backoff the plugin must be restarted: %v", err)
	}
	if c2.Pid() == c.Pid() {
		t.Fatal("same process after a crash")
	}
}

// TestNoOrphanWhenManagerIsKilled runs a "manager" (this test binary, re-executed) that starts
// a plugin and is then killed with SIGKILL; the plugin must die with it.
func TestNoOrphanWhenManagerIsKilled(t *testing.T) {
	path, sha := testPlugin(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KAMAJI_HELPER_MANAGER=1", "KAMAJI_HELPER_PLUGIN="+path, "KAMAJI_HELPER_SHA="+sha)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PLUGIN_PID="); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		t.Fatal("the helper manager did not report its plugin")
	}
	if !alive(pid) {
		t.Fatal("plugin not running before the kill")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return !alive(pid), nil })
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("plugin %d outlived the killed manager", pid)
	}
}

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited; it only waits for its new parent to reap it.
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// TestMain doubles as the helper manager of TestNoOrphanWhenManagerIsKilled.
func TestMain(m *testing.M) {
	if os.Getenv("KAMAJI_HELPER_MANAGER") == "1" {
		helperManager()
	}
	os.Exit(m.Run())
}

func helperManager() {
	h := New([]settings.Plugin{entry(os.Getenv("KAMAJI_HELPER_PLUGIN"), os.Getenv("KAMAJI_HELPER_SHA"))}, Options{})
	c, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("PLUGIN_PID=%d\n", c.Pid())
	select {} // wait to be killed
}

// The kernel's parent-death signal follows the thread that forked the plugin: a plugin first
// asked for from a goroutine that ends while locked to its thread (Go then ends the thread)
// must outlive that thread.
func TestPluginOutlivesTheThreadThatAskedForIt(t *testing.T) {
	path, sha := testPlugin(t)
	h := New([]settings.Plugin{entry(path, sha)}, Options{})
	t.Cleanup(h.Close)
	var tid int
	for tid == 0 {
		tids, errs := make(chan int, 1), make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			if syscall.Gettid() == os.Getpid() {
				// The main thread is never ended (Go parks it instead): try another.
				runtime.UnlockOSThread()
				tids <- 0
				return
			}
			tids <- syscall.Gettid()
			_, _, err := h.DataStore(context.Background(), "fake")
			errs <- err
		}()
		if tid = <-tids; tid != 0 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, err := os.Stat(task)
		return os.IsNotExist(err), nil
	}); err != nil {
		t.Fatalf("thread %d did not end: %v", tid, err)
	}
	// Had the plugin been forked from that thread, SIGKILL is pending by now and it cannot answer.
	if err := h.Probe(context.Background(), "fake"); err != nil {
		t.Fatalf("the plugin died with the thread that first asked for it: %v", err)
	}
}
