package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// partition: every TCP converged, then the DataStore's etcd unreachable for -partition-for
// (the relay cut: connections hang, as behind a DROP rule). Right after the cut every TCP gets
// a spec change that only touches its Deployment (a pod annotation), so the manager has work
// that needs no datastore. Figures: how many TCPs' DataStoreReady named the DataStore during
// the outage and whether the DataStore's own Ready did, how many Deployments took the change
// during the outage, Secrets whose data changed, and seconds from the end of the outage until
// every TCP converged. Aim: the failure is named, no Secret changes, every Deployment follows
// its spec during the outage.
func partition(h *harness, o options) error {
	const prefix = "part"
	all := names(prefix, o.tcps)
	if err := h.createTCPs(prefix, o.tcps); err != nil {
		return err
	}
	provisioned, err := h.waitConverged(prefix, all, "", 10*time.Minute)
	if err != nil {
		return err
	}
	before, err := h.secretSums(prefix)
	if err != nil {
		return err
	}

	logf("partition: %d TCPs converged in %.1f s; cutting the DataStore's etcd for %s", len(all), provisioned.Seconds(), o.partitionFor)
	cutAt := time.Now()
	h.hole.Cut()
	if err := h.bump(all, "1"); err != nil {
		h.hole.Restore()
		return err
	}
	var (
		maxNamed, maxDown int
		dsDown            bool
		sample, dsMessage string
		depsFollowed      int
		followedAt        time.Duration
	)
	for time.Since(cutAt) < o.partitionFor {
		s, err := h.snapshot(prefix)
		if err != nil {
			h.hole.Restore()
			return err
		}
		named, down := 0, 0
		for _, t := range s.tcps {
			c := meta.FindStatusCondition(t.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
			if c == nil || c.Status == metav1.ConditionTrue {
				continue
			}
			down++
			if namesDataStore(c.Message, h.hole.Addr()) {
				named++
				if sample == "" {
					sample = c.Reason + ": " + c.Message
				}
			}
		}
		maxNamed, maxDown = max(maxNamed, named), max(maxDown, down)
		ds := &kamajiv1alpha1.DataStore{}
		if err := h.c.Get(h.ctx, client.ObjectKey{Name: dataStoreName}, ds); err == nil {
			if c := meta.FindStatusCondition(ds.Status.Conditions, "Ready"); c != nil && c.Status != metav1.ConditionTrue {
				dsDown, dsMessage = true, c.Reason+": "+c.Message
			}
		}
		followed := 0
		for _, n := range all {
			if d := s.deps[n]; d != nil && d.Spec.Template.Annotations[bumpKey] == "1" {
				followed++
			}
		}
		if followed == len(all) && depsFollowed < len(all) {
			followedAt = time.Since(cutAt)
		}
		depsFollowed = followed
		time.Sleep(2 * time.Second)
	}
	during, err := h.secretSums(prefix)
	if err != nil {
		h.hole.Restore()
		return err
	}
	h.hole.Restore()
	restoredAt := time.Now()
	logf("partition: restored; waiting for every TCP to converge")
	if _, err := h.waitConverged(prefix, all, "1", 10*time.Minute); err != nil {
		return err
	}
	recovery := time.Since(restoredAt)
	after, err := h.secretSums(prefix)
	if err != nil {
		return err
	}
	changedDuring, changedAfter := changed(before, during), changed(before, after)

	metric("tcps", float64(len(all)), "count")
	metric("outage.seconds", o.partitionFor.Seconds(), "s")
	metric("tcps.datastore-condition-named", float64(maxNamed), "count")
	metric("tcps.datastore-condition-false", float64(maxDown), "count")
	metric("datastore.ready-false", b2f(dsDown), "bool")
	metric("deployments.followed-during-outage", float64(depsFollowed), "count")
	if followedAt > 0 {
		metric("deployments.followed.seconds", followedAt.Seconds(), "s")
	}
	metric("secrets.changed-during-outage", float64(len(changedDuring)), "count")
	metric("secrets.changed", float64(len(changedAfter)), "count")
	metric("recovery.seconds", recovery.Seconds(), "s")
	if sample != "" {
		fmt.Printf("a TCP's DataStoreReady during the outage: %s\n", sample)
	}
	if dsMessage != "" {
		fmt.Printf("the DataStore's Ready during the outage: %s\n", dsMessage)
	}
	if len(changedAfter) > 0 {
		fmt.Printf("Secrets whose data changed: %v\n", head(changedAfter))
	}
	fmt.Printf("%d converged TCPs, DataStore etcd unreachable for %s with a pod annotation changed on each; all converged %.1f s after it came back\n",
		len(all), o.partitionFor, recovery.Seconds())
	fmt.Println(verdict((dsDown || maxNamed > 0) && len(changedAfter) == 0 && depsFollowed == len(all),
		"conditions name the DataStore, no Secret changes, every Deployment follows its spec during the outage",
		fmt.Sprintf("named by %d TCPs' DataStoreReady and DataStore Ready=%v", maxNamed, !dsDown),
		fmt.Sprintf("%d Secrets changed", len(changedAfter)),
		fmt.Sprintf("%d of %d Deployments followed during the outage", depsFollowed, len(all))))
	return nil
}

// namesDataStore reports whether a condition message names the DataStore or its endpoint.
func namesDataStore(msg, endpoint string) bool {
	return strings.Contains(msg, dataStoreName) || strings.Contains(msg, endpoint)
}

// secretSums is a digest of the data of every Secret of the prefix's TCPs, by name.
func (h *harness) secretSums(prefix string) (map[string]string, error) {
	var list corev1.SecretList
	if err := h.c.List(h.ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if strings.HasPrefix(s.Name, prefix+"-") {
			out[s.Name] = dataSum(s.Data)
		}
	}
	return out, nil
}

func dataSum(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sum := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(sum, "%s=%d:", k, len(data[k]))
		sum.Write(data[k])
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// changed lists the names of before whose digest differs in after, or that are gone from it.
func changed(before, after map[string]string) []string {
	var out []string
	for n, s := range before {
		if after[n] != s {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
