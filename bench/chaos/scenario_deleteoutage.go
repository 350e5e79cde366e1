package main

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// deleteOutage: -tcps TCPs converged, the DataStore's etcd made unreachable, every TCP deleted,
// the outage held for -delete-outage, then lifted. A TCP that disappears during the outage had
// its finalizer released without its slice being deprovisioned. Figures: TCPs gone during the
// outage, seconds from the end of the outage until every TCP is gone, and the residue read
// straight from etcd (users, roles, owner records, and tenant keys: 10 per TCP are written in its
// prefix first, as its apiserver would) with the TCP objects left.
// Aim: 0 gone during the outage, residue 0, no TCP left.
func deleteOutage(h *harness, o options) error {
	const prefix = "del"
	all := names(prefix, o.tcps)
	if err := h.createTCPs(prefix, o.tcps); err != nil {
		return err
	}
	if _, err := h.waitConverged(prefix, all, "", 10*time.Minute); err != nil {
		return err
	}
	// No tenant apiserver runs to write the tenants' data: the suite writes some in each
	// tenant's prefix, as its apiserver would, so that the residue counts data left too.
	seeded, err := h.seedTenantKeys(prefix, 10)
	if err != nil {
		return err
	}
	logf("delete-outage: %d TCPs converged; cutting the DataStore's etcd and deleting them, for %s", len(all), o.deleteOutage)
	cutAt := time.Now()
	h.hole.Cut()
	if err := h.deleteTCPs(all); err != nil {
		h.hole.Restore()
		return err
	}
	minLeft := len(all)
	sample := ""
	for time.Since(cutAt) < o.deleteOutage {
		s, err := h.snapshot(prefix)
		if err != nil {
			h.hole.Restore()
			return err
		}
		minLeft = min(minLeft, len(s.tcps))
		for _, t := range s.tcps {
			// What a user sees on a TCP whose deletion waits on the DataStore.
			if c := meta.FindStatusCondition(t.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady); c != nil && c.Status != metav1.ConditionTrue && t.DeletionTimestamp != nil {
				sample = c.Reason + ": " + c.Message
			}
		}
		time.Sleep(2 * time.Second)
	}
	h.hole.Restore()
	restoredAt := time.Now()
	logf("delete-outage: restored; %d TCPs held by their finalizer", minLeft)
	goneErr := h.waitGone(prefix, all, 10*time.Minute)
	recovery := time.Since(restoredAt)
	s, err := h.snapshot(prefix)
	if err != nil {
		return err
	}
	es, err := readSlices(h.ctx, h.etcdCli)
	if err != nil {
		return err
	}

	metric("tcps", float64(len(all)), "count")
	metric("tenant-keys.seeded", float64(seeded), "count")
	metric("outage.seconds", o.deleteOutage.Seconds(), "s")
	metric("released.during-outage", float64(len(all)-minLeft), "count")
	if goneErr == nil {
		metric("recovery.seconds", recovery.Seconds(), "s")
	}
	metric("tcps.left", float64(len(s.tcps)), "count")
	metric("residue.users", float64(len(es.Users)), "count")
	metric("residue.roles", float64(len(es.Roles)), "count")
	metric("residue.owner-records", float64(len(es.SchemaOwners)+es.UserOwners), "count")
	metric("residue.keys", float64(es.TenantKeys), "count")
	metric("residue", float64(es.residue()), "count")
	if sample != "" {
		fmt.Printf("a TCP being deleted, at the end of the outage: DataStoreReady %s\n", sample)
	}
	if goneErr != nil {
		fmt.Printf("not every TCP went away within 10 minutes of the recovery: %v\n", goneErr)
	}
	fmt.Printf("%d converged TCPs deleted while the DataStore's etcd was unreachable for %s; %d released during the outage, the rest %.1f s after it ended\n",
		len(all), o.deleteOutage, len(all)-minLeft, recovery.Seconds())
	fmt.Println(verdict(minLeft == len(all) && len(s.tcps) == 0 && es.residue() == 0,
		"finalizers held during the outage and released after it, residue 0",
		fmt.Sprintf("%d released during the outage, %d TCPs left", len(all)-minLeft, len(s.tcps)),
		fmt.Sprintf("residue %d", es.residue())))
	return nil
}

// seedTenantKeys writes n keys in the prefix ("/<schema>/") of each TCP of prefix, through the
// root client, and returns how many it wrote.
func (h *harness) seedTenantKeys(prefix string, n int) (int, error) {
	s, err := h.snapshot(prefix)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range s.liveTenants() {
		for i := range n {
			if _, err := h.etcdCli.Put(h.ctx, fmt.Sprintf("/%s/registry/configmaps/default/cm-%d", t.Schema, i), "x"); err != nil {
				return total, err
			}
			total++
		}
	}
	return total, nil
}
