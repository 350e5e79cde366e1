package command

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestMigrateRefusalsAndStart(t *testing.T) {
	cur := sample("cur", kamajiv1alpha1.VersionReady)
	cur.Status.Storage.DataStoreName = "default"
	busy := sample("busy", kamajiv1alpha1.VersionMigrating)
	busy.Status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{Source: "default", Target: "pg", Phase: kamajiv1alpha1.MigrationCopying}
	pg := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "pg"}}
	def := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	e := newEnv(t, cur, busy, pg, def)

	_, _, err := e.run("migrate", "cur")
	wantErr(t, err, "--to DATASTORE is required")
	_, _, err = e.run("migrate", "cur", "--to", "nope")
	wantErr(t, err, `DataStore "nope" not found`)
	_, _, err = e.run("migrate", "busy", "--to", "pg")
	wantErr(t, err, "busy is already migrating from DataStore default to pg (phase Copying)")
	if out, _, err := e.run("migrate", "cur", "--to", "default"); err != nil || !strings.Contains(out, "already runs on DataStore default") {
		t.Errorf("migrating to where it is: %v %q", err, out)
	}
	out, _, err := e.run("migrate", "cur", "--to", "pg", "--wait=false")
	if err != nil || e.tcp("cur").Spec.DataStore != "pg" || !strings.HasSuffix(out, "cur: spec.dataStore set to pg; the migration runs.\n") {
		t.Fatalf("migrate --wait=false: %v %q, spec.dataStore %q", err, out, e.tcp("cur").Spec.DataStore)
	}
}

func TestMigratedSaysThePhaseAndTheRollback(t *testing.T) {
	tcp := sample("t", kamajiv1alpha1.VersionMigrating)
	tcp.Spec.DataStore = "pg"
	done := migrated("pg")
	tcp.Status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{Source: "default", Target: "pg", Phase: kamajiv1alpha1.MigrationSwitching}
	if ok, progress, err := done(context.Background(), tcp); ok || err != nil || progress != "phase Switching" {
		t.Errorf("during the switch: %v %q %v", ok, progress, err)
	}
	tcp.Status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{Source: "default", Target: "pg", Phase: kamajiv1alpha1.MigrationFailed, Message: "verification failed"}
	if _, _, err := done(context.Background(), tcp); err == nil || !strings.Contains(err.Error(), "failed and was rolled back: verification failed") {
		t.Errorf("a rollback: %v", err)
	}
	ready := sample("t", kamajiv1alpha1.VersionReady)
	ready.Spec.DataStore, ready.Status.Storage.DataStoreName = "pg", "pg"
	if ok, _, err := done(context.Background(), ready); !ok || err != nil {
		t.Errorf("on the target and Ready: %v %v", ok, err)
	}
}
