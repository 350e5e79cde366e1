package v1alpha1

// Annotations and labels recognised on our objects; the names are Kamaji's.
const (
	// PausedAnnotation stops the reconciliation of the annotated TenantControlPlane, DataStore or
	// Secret while present; its value is ignored.
	PausedAnnotation = "kamaji.clastix.io/paused"
	// MigrationTimeoutAnnotation overrides the time allowed for a datastore migration (a Go
	// duration such as "10m"; default 5m): a migration not switched by then is rolled back.
	MigrationTimeoutAnnotation = "kamaji.clastix.io/migration-timeout"
	// CleanupPriorMigrationAnnotation ("true") drops the tenant's data on the target DataStore
	// before a migration; without it a migration to a slice that holds keys is rolled back.
	CleanupPriorMigrationAnnotation = "kamaji.clastix.io/cleanup-prior-migration"
	// MigrationKeepSourceAnnotation ("true") keeps the tenant's slice on the source DataStore
	// after a migration instead of deprovisioning it. Not a Kamaji annotation.
	MigrationKeepSourceAnnotation = "kamaji.clastix.io/migration-keep-source"
	// KubeconfigSecretKeyAnnotation selects the key of the admin kubeconfig Secret used for the tenant (default super-admin.conf).
	KubeconfigSecretKeyAnnotation = "kamaji.clastix.io/kubeconfig-secret-key"
	// AbandonDataStoreSliceAnnotation, on a TenantControlPlane being deleted, releases it without
	// deprovisioning its datastore slices (for a datastore that is gone for good): the slices
	// are left as they are and recorded in a Warning Event on each DataStore. Not a Kamaji
	// annotation; its value is ignored.
	AbandonDataStoreSliceAnnotation = "kamaji.clastix.io/abandon-datastore-slice"
	// SleepAfterAnnotation opts a TenantControlPlane into automatic sleep: a Go duration (at
	// least 30s, such as "15m") without requests from outside its control plane after which it
	// scales to zero; the first connection to its endpoint wakes it. See docs/sleep.md. Not a
	// Kamaji annotation.
	SleepAfterAnnotation = "kamaji.clastix.io/sleep-after"
	// ControlPlaneProfileAnnotation picks a set of component settings for the tenant's control
	// plane: "lean" runs kube-apiserver without its watch cache, API Priority and Fairness and
	// its per-minute object counts (the apiserver_storage_objects metric), and with GOGC=25, and
	// has the controller manager and scheduler renew their leader leases every 10 s (a 60 s
	// lease) and run on one Go processor unless given a CPU limit, for less memory, idle CPU and
	// datastore load; "default" (or no annotation) is the standard control plane. See
	// docs/operations.md (Lean control planes). Not a Kamaji annotation.
	ControlPlaneProfileAnnotation = "kamaji.clastix.io/control-plane-profile"
	// RotateCertificatesAnnotation asks for the TenantControlPlane's certificates to be rotated now.
	RotateCertificatesAnnotation = "certs.kamaji.clastix.io/rotate"

	// NameLabel marks every object the core creates for a TenantControlPlane with its name.
	NameLabel = "kamaji.clastix.io/name"
	// ManagedByLabel marks objects the core owns; caches are restricted by it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on objects the core owns.
	ManagedByValue = "kamaji"

	// AddonLabel marks the objects the core applies in a tenant cluster for an addon with the
	// addon's name ("coredns", "kube-proxy", "konnectivity"); pruning selects by it.
	AddonLabel = "kamaji.clastix.io/addon"
	// PhaseLabel marks the objects the core applies in a tenant cluster for a kubeadm phase.
	PhaseLabel = "kamaji.clastix.io/phase"
	// AddonIgnoreAnnotation, on an addon object in the tenant cluster, lists the fields the core
	// stops declaring, as comma-separated JSON pointers ("/spec/replicas,/data/Corefile"), so
	// that values set by the tenant's users are kept; "*" hands the whole object over to them
	// (never applied, never pruned). See docs/addons.md.
	AddonIgnoreAnnotation = "kamaji.clastix.io/addon-ignore"
)
