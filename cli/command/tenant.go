package command

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
	"github.com/openhcp/kamaji/cli/wait"
)

// SleepReplicasAnnotation remembers, on a sleeping TCP, the replicas it had before `sleep`,
// so that `wake` brings them back. Written by this CLI only; not a Kamaji annotation.
const SleepReplicasAnnotation = "kamaji.clastix.io/replicas-before-sleep"

// DefaultTimeout bounds the wait of the mutating verbs.
const DefaultTimeout = 5 * time.Minute

// getTCP reads a TCP, with a clear error when it does not exist.
func (a *app) getTCP(ctx context.Context, namespace, name string) (*kamajiv1alpha1.TenantControlPlane, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tcp); err != nil {
		if apierrors.IsNotFound(err) && !isNotServed(err) {
			return nil, notFound(namespace, name)
		}
		return nil, explain(err)
	}
	return tcp, nil
}

// target resolves the NAME argument and the namespace, and reads the TCP.
func (a *app) target(cmd *cobra.Command, args []string) (*kamajiv1alpha1.TenantControlPlane, error) {
	ns, err := a.namespace()
	if err != nil {
		return nil, err
	}
	return a.getTCP(ctx(cmd), ns, args[0])
}

// patchTCP applies a JSON merge patch to the TCP, built from the freshest copy by change
// (which returns the metadata and spec parts to merge; nil values remove keys). The patch
// carries the resourceVersion it was computed from, so a concurrent writer makes it fail with
// a conflict and it is computed again: read-modify-write without lost updates.
func (a *app) patchTCP(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane, change func(*kamajiv1alpha1.TenantControlPlane) (map[string]any, error)) (*kamajiv1alpha1.TenantControlPlane, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	cur := tcp.DeepCopy()
	first := true
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			// A fresh object: decoding into the old one could keep map entries since removed.
			fresh := &kamajiv1alpha1.TenantControlPlane{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(cur), fresh); err != nil {
				return err
			}
			cur = fresh
		}
		first = false
		patch, err := change(cur)
		if err != nil {
			return err
		}
		meta, _ := patch["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			patch["metadata"] = meta
		}
		meta["resourceVersion"] = cur.ResourceVersion
		body, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		return c.Patch(ctx, cur, client.RawPatch(types.MergePatchType, body))
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound(tcp.Namespace, tcp.Name)
		}
		return nil, explain(err)
	}
	return cur, nil
}

// annotations is the metadata part of a merge patch setting (or, with a nil value, removing)
// annotations.
func annotations(kv map[string]any) map[string]any {
	return map[string]any{"metadata": map[string]any{"annotations": kv}}
}

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", true, "wait until the new state is reached, with a progress line; --wait=false returns once the change is recorded")
	cmd.Flags().DurationVar(&w.timeout, "timeout", DefaultTimeout, "how long to wait before failing with the condition that says why")
}

// waitTCP polls the TCP until done says so. The progress line shows its state and failing
// conditions; done may add what it still waits for, or fail the wait.
func (a *app) waitTCP(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane, goal string, w waitFlags, done func(context.Context, *kamajiv1alpha1.TenantControlPlane) (bool, string, error)) (*kamajiv1alpha1.TenantControlPlane, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	key := client.ObjectKeyFromObject(tcp)
	var cur *kamajiv1alpha1.TenantControlPlane
	err = wait.For(ctx, goal, wait.Options{
		Timeout: w.timeout, Interval: a.deps.Interval, Out: a.streams.ErrOut, Terminal: a.terminal(), Now: a.deps.Now,
	}, func(ctx context.Context) (bool, string, error) {
		cur = &kamajiv1alpha1.TenantControlPlane{}
		if err := c.Get(ctx, key, cur); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "", fmt.Errorf("TenantControlPlane %s/%s was deleted while waiting for it", tcp.Namespace, tcp.Name)
			}
			if ctx.Err() != nil {
				return false, "", ctx.Err()
			}
			return false, "", explain(err)
		}
		ok, pending, err := done(ctx, cur)
		if err != nil {
			return false, "", err
		}
		progress := "status " + status.Line(cur)
		if pending != "" {
			progress = pending + "; " + progress
		}
		return ok, progress, nil
	})
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// refusePaused stops a verb whose change a paused TCP would never apply, unless the caller
// does not wait for it.
func refusePaused(tcp *kamajiv1alpha1.TenantControlPlane, w waitFlags, verb string) error {
	if !status.Paused(tcp) || !w.wait {
		return nil
	}
	return fmt.Errorf("TenantControlPlane %s/%s is paused (%s): the manager would not %s it; `kubectl kamaji resume %s -n %s` first, or --wait=false to record the change for when it resumes",
		tcp.Namespace, tcp.Name, kamajiv1alpha1.PausedAnnotation, verb, tcp.Name, tcp.Namespace)
}

// completeTenants completes a TCP name in the namespace of the flags.
func (a *app) completeTenants(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ns, err := a.namespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list := &kamajiv1alpha1.TenantControlPlaneList{}
	if err := c.List(ctx(cmd), list, client.InNamespace(ns)); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(list.Items))
	for _, t := range list.Items {
		if strings.HasPrefix(t.Name, toComplete) {
			names = append(names, t.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// nameArg is the Args check of the verbs that take one TCP name.
func nameArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes the name of one TenantControlPlane (see --help)", cmd.CommandPath())
	}
	return nil
}
