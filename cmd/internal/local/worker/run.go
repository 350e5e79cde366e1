package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Files of a worker that kubeadm and the kubelet write, as seen inside its mount namespace.
const (
	kubeletConf   = "/etc/kubernetes/kubelet.conf"
	kubeletConfig = "/var/lib/kubelet/config.yaml"
	kubeadmFlags  = "/var/lib/kubelet/kubeadm-flags.env"
)

// Logs of the worker's processes, in its folder.
func (c Config) LogPath(name string) string { return c.path("logs", name+".log") }

// Run is the worker node. It must run in the worker's network namespace and in a mount
// namespace of its own (the plane starts it so): it shows the worker's folders at the host
// paths, serves the registry, runs containerd, joins the tenant with kubeadm the first time,
// runs the kubelet (restarted when it exits) and writes the pod network once the Node has its
// pod range. It returns when ctx ends, after stopping the kubelet and containerd; the pods'
// containers are left to the plane's down, which removes the worker's cgroups.
func Run(ctx context.Context, c Config, log io.Writer) error {
	c.Defaults()
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	if err := c.mountHostPaths(); err != nil {
		return err
	}
	// Pods' traffic leaves through the node's address.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return err
	}
	for name, body := range map[string]string{
		"containerd.toml":                         c.ContainerdConfig(),
		"certs.d/_default/hosts.toml":             RegistryHosts(c.registry()),
		"patches/kubeletconfiguration+merge.yaml": c.KubeletPatch(),
		"cni/.keep":                               "",
		"logs/.keep":                              "",
		"containerd/.keep":                        "",
		"opt/.keep":                               "",
	} {
		if err := writeFile(c.path(name), body); err != nil {
			return err
		}
	}
	containerd, err := c.startRuntime(ctx, Registry{Dir: c.RegistryDir}, logf)
	if err != nil {
		return err
	}

	joined := make(chan error, 1)
	if _, err := os.Stat(kubeletConf); err == nil {
		joined <- nil
		logf("already joined (%s)", kubeletConf)
	} else {
		j, err := ParseJoin(c.JoinCommand)
		if err != nil {
			return err
		}
		// It holds the bootstrap token: for root's eyes only.
		if err := os.WriteFile(c.path("join.yaml"), []byte(c.JoinConfiguration(j)), 0o600); err != nil {
			return err
		}
		lf, err := os.Create(c.LogPath("kubeadm-join"))
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, c.Kubeadm, "join", "--config", c.path("join.yaml"))
		cmd.Stdout, cmd.Stderr = lf, lf
		logf("kubeadm join %s as %s", j.Endpoint, c.Name)
		if err := cmd.Start(); err != nil {
			lf.Close()
			return err
		}
		go func() {
			err := cmd.Wait()
			lf.Close()
			if err != nil {
				err = fmt.Errorf("kubeadm join: %v (log %s)", err, c.LogPath("kubeadm-join"))
			}
			joined <- err
		}()
	}

	// The kubelet starts once kubeadm has written its configuration (kubeadm then waits for its
	// TLS bootstrap, as it would wait for systemd to start it).
	var joinErr error
	joinDone := false
	if err := waitFor(ctx, 3*time.Minute, func() error {
		select {
		case joinErr = <-joined:
			joinDone = true
			if joinErr != nil {
				return nil
			}
		default:
		}
		for _, f := range []string{kubeletConfig, kubeadmFlags} {
			if _, err := os.Stat(f); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("kubeadm wrote no kubelet configuration: %w (log %s)", err, c.LogPath("kubeadm-join"))
	}
	if joinErr != nil {
		return joinErr
	}
	flags, err := os.ReadFile(kubeadmFlags)
	if err != nil {
		return err
	}
	kubelet := &supervised{name: "kubelet", bin: c.Kubelet, args: KubeletArgs(string(flags)), log: c.LogPath("kubelet"), logf: logf}
	kubelet.start(ctx)
	if !joinDone {
		select {
		case joinErr = <-joined:
		case <-ctx.Done():
		}
		if joinErr != nil {
			kubelet.stop()
			containerd.stop()
			return joinErr
		}
		logf("joined")
	}

	go c.writePodNetwork(ctx, logf)
	<-ctx.Done()
	logf("stopping")
	kubelet.stop()
	containerd.stop()
	return nil
}

// startRuntime serves the node's registry and starts containerd, once its socket answers.
func (c Config) startRuntime(ctx context.Context, reg Registry, logf func(string, ...any)) (*supervised, error) {
	if err := serveRegistry(ctx, c.registry(), reg); err != nil {
		return nil, err
	}
	logf("registry serving %s on %s", c.RegistryDir, c.registry())
	containerd := &supervised{name: "containerd", bin: filepath.Join(c.ContainerdBin, "containerd"),
		args: []string{"--config", c.path("containerd.toml")}, log: c.LogPath("containerd"), logf: logf}
	containerd.start(ctx)
	if err := waitFor(ctx, time.Minute, func() error {
		conn, err := net.Dial("unix", "/run/containerd/containerd.sock")
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		containerd.stop()
		return nil, fmt.Errorf("containerd did not serve its socket: %w (log %s)", err, c.LogPath("containerd"))
	}
	logf("containerd serving /run/containerd/containerd.sock")
	return containerd, nil
}

// mountHostPaths shows the worker's folders at the host paths a node uses.
func (c Config) mountHostPaths() error {
	for _, p := range HostPaths {
		src := c.hostPathDir(p)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w (the plane makes it before starting a worker)", p, err)
		}
		if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, p, err)
		}
	}
	return nil
}

// writePodNetwork writes the CNI configuration with the pod range the tenant's controller
// manager gave the Node; until then the node reports its network not ready.
func (c Config) writePodNetwork(ctx context.Context, logf func(string, ...any)) {
	conf := c.path("cni", "10-kamaji.conflist")
	if _, err := os.Stat(conf); err == nil {
		return
	}
	var cidr string
	var cs kubernetes.Interface
	err := waitFor(ctx, 10*time.Minute, func() error {
		if cs == nil {
			// The kubelet writes its kubeconfig once its TLS bootstrap is done.
			rc, err := clientcmd.BuildConfigFromFlags("", kubeletConf)
			if err != nil {
				return err
			}
			if cs, err = kubernetes.NewForConfig(rc); err != nil {
				return err
			}
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cidr = n.Spec.PodCIDR; cidr == "" {
			return errors.New("no pod range yet")
		}
		return nil
	})
	if err != nil {
		logf("pod network: %v", err)
		return
	}
	if err := writeFile(conf, c.CNIConfig(cidr)); err != nil {
		logf("pod network: %v", err)
		return
	}
	logf("pod network %s (%s)", cidr, conf)
}

// supervised is a child process restarted when it exits, until stopped.
type supervised struct {
	name, bin, log string
	args           []string
	logf           func(string, ...any)
	cancel         context.CancelFunc
	done           chan struct{}
}

func (s *supervised) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				s.logf("%s: %v", s.name, err)
				return
			}
			cmd := exec.Command(s.bin, s.args...)
			cmd.Stdout, cmd.Stderr = f, f
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			if err := cmd.Start(); err != nil {
				f.Close()
				s.logf("%s: %v", s.name, err)
				return
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err = <-exited:
				s.logf("%s exited: %v; restarting in 2s (log %s)", s.name, err, s.log)
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			}
			f.Close()
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

func (s *supervised) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

func waitFor(ctx context.Context, timeout time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func writeFile(path, body string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if strings.HasSuffix(path, "/.keep") {
		return nil
	}
	return os.WriteFile(path, []byte(body), 0o644)
}
