package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
	"github.com/openhcp/kamaji/cmd/internal/local/worker"
	"github.com/openhcp/kamaji/cmd/internal/nodeagent"
)

func newLocalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a local plane: an admin cluster of host processes with a sample tenant (root, Linux)",
	}
	cmd.AddCommand(newLocalUpCommand(), newLocalDownCommand(), newLocalNodeCommand(), newRunContainerCommand(), newLocalBenchCommand(),
		newLocalForwardCommand(), newLocalBenchKineCommand(), newLocalBenchMigrationCommand(), // local_kine.go
		newLocalNodeAgentCommand(), newLocalWorkerCommand(), newLocalAdminNodeCommand(), newLocalAddWorkerCommand(), newLocalRemoveWorkerCommand(), newLocalBenchWorkerCommand(), newLocalBenchSleepCommand(), newLocalBenchWakesCommand(), newLocalBenchSequentialCommand(), newLocalBenchParallelCommand())
	return cmd
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newLocalUpCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start (or complete) the local plane and sample tenants, then print the kubectl line that reaches the first",
		Long: `Start the local plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kube-proxy as host processes, a process node running the admin cluster's pods as processes
(each pod in its own network namespace on the bridge), a multi-tenant etcd DataStore named
"default" (TLS + auth), the kamaji manager installed with the real helm from the repository's
charts (kamaji-crds, and kamaji in namespace kamaji-system: the manager runs as a pod of the
process node with its ServiceAccount, its plugins delivered by image volumes), --tenants
sample TenantControlPlanes, and --workers real worker nodes of the first one (containerd,
runc and the kubelet in namespaces of their own, joined with kubeadm join). With --node kubelet
the admin cluster's node is such a kubelet with containerd instead of the process node (images
built from this machine's binaries, CoreDNS for the admin cluster). Running it again completes
or checks a running plane.

Binaries come from the kamaji cache (hack/kube-bins.sh) and from the folder of this kamaji
binary (make build); ` + "`make up`" + ` builds what is missing first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			return local.Up(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "Number of sample TenantControlPlanes (tenant-00, tenant-01, ...).")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "Number of worker nodes (containerd, runc and the kubelet, joined with kubeadm join) of the first sample tenant; 0 for none.")
	f.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "Folder for the plane's certificates, data, logs and kubeconfigs.")
	f.StringVar(&cfg.BinDir, "bin-dir", cfg.BinDir, "Folder with the plugin binaries (kamaji-datastore-etcd) and kamaji-pause (the workers' pod sandbox).")
	f.StringVar(&cfg.Node, "node", cfg.Node, "The admin cluster's node: process (pods' containers run as host processes) or kubelet (containerd and the kubelet, the control-plane images built from this machine's binaries).")
	f.StringVar(&cfg.Helm, "helm", "", "The helm binary that installs the charts (default: the one hack/helm.sh builds into the cache).")
	f.StringVar(&cfg.ChartsDir, "charts", "", "Folder with the kamaji-crds and kamaji charts (default: the repository's charts folder).")
	f.StringSliceVar(&cfg.DataStores, "datastores", cfg.DataStores, "DataStores to host: etcd (\"default\", always), mysql (the machine's MariaDB), postgresql (its PostgreSQL), nats (a NATS of the plane's own, operator mode), or all; tenants reach the last three through a kine sidecar.")
	return cmd
}

func newLocalDownCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local plane and remove its namespaces, links, rules, mounts and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Out = cmd.OutOrStdout()
			return local.Down(context.Background(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The plane's state folder, as given to up.")
	return cmd
}

func newLocalNodeCommand() *cobra.Command {
	var cfg node.Config
	var kubeconfig, podCIDR, gateway, apiService string
	cmd := &cobra.Command{
		Use:    "node",
		Short:  "Run the process node (started by local up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if _, cfg.PodCIDR, err = net.ParseCIDR(podCIDR); err != nil {
				return fmt.Errorf("--pod-cidr: %v", err)
			}
			if cfg.Gateway = net.ParseIP(gateway); cfg.Gateway == nil {
				return fmt.Errorf("--gateway: invalid address %q", gateway)
			}
			if apiService != "" {
				if cfg.APIServiceHost, cfg.APIServicePort, err = net.SplitHostPort(apiService); err != nil {
					return fmt.Errorf("--api-service: %v", err)
				}
			}
			if cfg.SelfExe, err = os.Executable(); err != nil {
				return err
			}
			if cfg.BinDir == "" {
				// make build puts kamaji and the plugins side by side.
				cfg.BinDir = filepath.Dir(cfg.SelfExe)
			}
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			rc.QPS, rc.Burst = 50, 100
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return node.New(cfg, cs).Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "local-node", "Node name.")
	f.StringVar(&cfg.StateDir, "state-dir", ".local", "The plane's state folder (pods live in its pods/ folder).")
	f.StringVar(&kubeconfig, "kubeconfig", "", "Admin cluster kubeconfig.")
	f.StringVar(&cfg.Bridge, "bridge", "kamaji0", "Bridge the pods' veths join.")
	f.StringVar(&podCIDR, "pod-cidr", "10.244.0.0/16", "The bridge's subnet.")
	f.StringVar(&gateway, "gateway", "10.244.0.1", "The bridge's address.")
	f.StringVar(&cfg.ImagesFile, "images", "images.yaml", "Image map.")
	f.StringVar(&cfg.Cache, "cache", "", "The kamaji cache folder ($cache in the image map).")
	f.StringVar(&cfg.BinDir, "bin-dir", "", "The folder make build fills ($bin in the image map: the kamaji and kamaji-<plugin> images; default: this binary's folder).")
	f.StringVar(&cfg.KubeBins, "kube-bins", "", "hack/kube-bins.sh, to build the binaries of an image rule's missing folder (a tenant at a version not built yet); empty: never.")
	f.StringVar(&apiService, "api-service", "", "host:port of the admin kubernetes Service (KUBERNETES_SERVICE_HOST/PORT).")
	f.StringVar(&cfg.KubeletVersion, "kubelet-version", local.KubeVersion, "Version the Node reports.")
	return cmd
}

func newRunContainerCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "run-container SPEC",
		Short:  "Become a container process (used by the process node)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return node.RunContainer(args[0])
		},
	}
}

func newLocalNodeAgentCommand() *cobra.Command {
	var o nodeagent.Options
	cmd := &cobra.Command{
		Use:   "node-agent",
		Short: "Join a tenant cluster as a node the kubeadm way, without running pods (used by tests)",
		Long: `Play the kubelet's part of kubeadm's node join against a tenant kube-apiserver: discover
cluster-info with the bootstrap token and the CA pin, get a kubelet client certificate through
a CSR, register the Node, keep its Lease and Ready condition fresh, renew its client certificate
through CSRs as a kubelet with rotateCertificates does, and serve the kubelet port (/healthz,
/pods) to clients with a certificate of the tenant CA. Runs until SIGINT/SIGTERM and leaves the
Node in place.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			o.Out = cmd.OutOrStdout()
			return nodeagent.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "Tenant API server, https://HOST:PORT or HOST:PORT as kubeadm join prints it.")
	f.StringVar(&o.Token, "token", "", "Bootstrap token ID.SECRET (kubeadm token create).")
	f.StringSliceVar(&o.CACertHashes, "discovery-token-ca-cert-hash", nil, "Pin of the tenant CA's public key, sha256:HEX; repeat for more than one.")
	f.StringVar(&o.JoinCommand, "join-command", "", "The whole line \"kubeadm token create --print-join-command\" prints, instead of --server, --token and --discovery-token-ca-cert-hash.")
	f.StringVar(&o.NodeName, "node-name", "", "Name of the Node to register (a DNS subdomain).")
	f.StringVar(&o.NodeIP, "node-ip", "", "InternalIP the Node reports; the API server calls the kubelet port there.")
	f.StringVar(&o.CertDir, "cert-dir", "", "Folder for ca.crt and the client certificates, as the kubelet's: kubelet-client-current.pem links to the one in use.")
	f.StringVar(&o.Listen, "listen", "", "Address of the kubelet API (default NODE-IP:10250).")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "Limit for joining: discovery, certificate signing and registration.")
	return cmd
}

func newLocalAddWorkerCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	var index int
	var tenant, namespace string
	cmd := &cobra.Command{
		Use:   "add-worker",
		Short: "Join one more worker node (containerd, runc, the kubelet of the tenant's version) to a tenant of the running plane",
		Long: `Join a worker node to a TenantControlPlane of the running local plane, as make up joins
worker-0 to tenant-00: a network and mount namespace of its own, containerd with Debian's runc,
the kubelet and kubeadm of the tenant's version (built beforehand: hack/kube-bins.sh
kubeadm@VERSION, K8S_VERSION=VERSION hack/node-bins.sh kubelet), joined with kubeadm join. The
Node is named worker-<index>; the index must be free on this machine. make down removes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" {
				return fmt.Errorf("--tenant is required")
			}
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			msg, err := local.AddWorker(ctx, cfg, index, namespace, tenant)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder.")
	f.StringVar(&tenant, "tenant", "", "The TenantControlPlane the node joins.")
	f.StringVar(&namespace, "namespace", "default", "Its namespace.")
	f.IntVar(&index, "index", 1, "The worker's number: its Node name worker-<index>, namespace, addresses (10.246.<index>.0/30) and cgroup.")
	return cmd
}

func newLocalRemoveWorkerCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	var index int
	cmd := &cobra.Command{
		Use:   "remove-worker",
		Short: "Delete a worker's Node from its tenant and remove the worker (processes, containers, namespaces, cgroups, state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := local.RemoveWorker(context.Background(), cfg, index); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", local.WorkerName(index))
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder.")
	cmd.Flags().IntVar(&index, "index", 1, "The worker's number (Node worker-<index>).")
	return cmd
}

// The hidden benchmarks of a running plane that take a count (parts of make bench's local section).
func newLocalBenchWorkerCommand() *cobra.Command {
	return newLocalBenchCountCommand("bench-worker",
		"Measure a worker node on a running plane: join time, pod start, memory (part of make bench's local section)",
		"pods", 10, "Pods started one after another on the worker.", local.BenchWorker)
}

func newLocalBenchSleepCommand() *cobra.Command {
	return newLocalBenchCountCommand("bench-sleep",
		"Measure automatic sleep on a running plane: an awake tenant's request overhead, the wake (part of make bench's local section)",
		"rounds", 3, "Wakes measured, each after the tenant fell asleep.", local.BenchSleep)
}

func newLocalBenchWakesCommand() *cobra.Command {
	return newLocalBenchCountCommand("bench-wakes",
		"Measure sleeping tenants woken at once on a running plane: the times to their answers (part of make bench's local section)",
		"tenants", 10, "Sleeping tenants woken at once.", local.BenchWakes)
}

func newLocalBenchSequentialCommand() *cobra.Command {
	return newLocalBenchCountCommand("bench-sequential",
		"Measure TCPs applied one after another on a running plane: apply to /readyz, with the stages, their memory, and their CPU and datastore load at rest (part of make bench's local section)",
		"tcps", 5, "TCPs applied one after another.", local.BenchSequential)
}

func newLocalBenchParallelCommand() *cobra.Command {
	return newLocalBenchCountCommand("bench-parallel",
		"Measure TCPs applied at once on a running plane: apply to /readyz, with the stages (part of make bench's local section)",
		"tcps", 10, "TCPs applied at once.", local.BenchParallel)
}

// newLocalBenchCountCommand is a hidden command that runs bench on the plane of --state-dir
// with the count its one flag gives.
func newLocalBenchCountCommand(use, short, flag string, def int, usage string, bench func(context.Context, local.Config, int) error) *cobra.Command {
	cfg := local.DefaultConfig()
	var n int
	cmd := &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			return bench(ctx, cfg, n)
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder.")
	cmd.Flags().IntVar(&n, flag, def, usage)
	return cmd
}

func newLocalAdminNodeCommand() *cobra.Command {
	var conf string
	cmd := &cobra.Command{
		Use:    "admin-node",
		Short:  "Run the admin cluster's kubelet node: containerd and the kubelet (started by local up --node kubelet in a mount namespace of its own)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return local.RunAdminNode(ctx, conf, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&conf, "config", "", "The node's configuration, written by local up (admin-node.json).")
	return cmd
}

func newLocalWorkerCommand() *cobra.Command {
	var c worker.Config
	var joinFile string
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Run a worker node: containerd and the kubelet, joined with kubeadm (started by local up in the worker's namespaces)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !c.Joined() {
				data, err := os.ReadFile(joinFile)
				if err != nil {
					return fmt.Errorf("--join-file: %w", err)
				}
				c.JoinCommand = strings.TrimSpace(string(data))
			}
			ctx, cancel := signalContext()
			defer cancel()
			return worker.Run(ctx, c, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Index, "index", 0, "The worker's number on this machine (its namespace, addresses and cgroup).")
	f.StringVar(&c.Name, "name", "", "Node name (default worker-<index>).")
	f.StringVar(&c.Dir, "dir", "", "The worker's state folder.")
	f.StringVar(&joinFile, "join-file", "", "File holding the line kubeadm token create --print-join-command printed.")
	f.StringVar(&c.Kubeadm, "kubeadm", "kubeadm", "kubeadm binary.")
	f.StringVar(&c.Kubelet, "kubelet", "kubelet", "kubelet binary.")
	f.StringVar(&c.ContainerdBin, "containerd-bin", "", "Folder with containerd, containerd-shim-runc-v2 and ctr.")
	f.StringVar(&c.CNIBin, "cni-bin", "", "Folder with the CNI plugins (bridge, host-local, loopback, portmap).")
	f.StringVar(&c.RegistryDir, "registry-dir", "", "Folder of the images the worker's registry serves.")
	return cmd
}

func newLocalBenchCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	var n int
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measure a bare kube-apiserver start and TCP apply to tenant /readyz on a running plane (make bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			return local.Bench(ctx, cfg, n)
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder.")
	cmd.Flags().IntVar(&n, "tcps", 10, "TCPs created one after another, then at once.")
	return cmd
}
