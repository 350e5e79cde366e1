package controlplane

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// storageArgs are kube-apiserver's datastore flags: straight to etcd over mutual TLS, or to
// the kine sidecar on loopback.
func storageArgs(in Input) []string {
	var args []string
	switch {
	case in.Etcd != nil:
		args = append(args,
			"--etcd-servers="+strings.Join(in.Etcd.Servers, ","),
			"--etcd-prefix="+in.Etcd.Prefix,
			"--etcd-cafile="+fileDataStoreCACert.path,
			"--etcd-certfile="+fileDataStoreClientCert.path,
			"--etcd-keyfile="+fileDataStoreClientKey.path,
			// The etcd is shared: compaction is the DataStore operator's job, and a tenant user
			// may not read etcd's compaction key anyway (it would log a denial every second).
			"--etcd-compaction-interval=0",
		)
	case in.Kine != nil:
		args = append(args, "--etcd-servers="+kineEndpoint(in.Kine))
	}
	if len(in.EtcdServersOverrides) > 0 {
		// Each entry names a distinct resource, so their order carries no meaning: sort it
		// away in case the caller built them from a map.
		overrides := slices.Clone(in.EtcdServersOverrides)
		slices.Sort(overrides)
		args = append(args, "--etcd-servers-overrides="+strings.Join(overrides, ","))
	}
	return args
}

func kineEndpoint(k *KineStorage) string {
	if k.Endpoint != "" {
		return k.Endpoint
	}
	return DefaultKineEndpoint
}

// storageMounts are the datastore files kube-apiserver needs (none with kine: loopback).
func storageMounts(in Input) []corev1.VolumeMount {
	if in.Etcd == nil {
		return nil
	}
	return mounts(fileDataStoreCACert, fileDataStoreClientCert, fileDataStoreClientKey)
}

func storageVolumes(in Input) []corev1.Volume {
	switch {
	case in.Etcd != nil:
		return []corev1.Volume{secretVolume(volumeDataStore, in.Etcd.CertSecret,
			fileDataStoreCACert, fileDataStoreClientCert, fileDataStoreClientKey)}
	case in.Kine != nil && in.Kine.FilesSecret != "":
		items := make([]corev1.KeyToPath, 0, len(in.Kine.Files))
		for i := range in.Kine.Files {
			items = append(items, *in.Kine.Files[i].DeepCopy())
		}
		slices.SortFunc(items, func(a, b corev1.KeyToPath) int { return strings.Compare(a.Key, b.Key) })
		if len(items) == 0 {
			items = nil // all keys
		}
		return []corev1.Volume{{Name: volumeKineFiles, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  in.Kine.FilesSecret,
			Items:       items,
			DefaultMode: ptr.To(secretMode),
		}}}}
	}
	return nil
}

// kineContainer is the sidecar translating etcd calls to the SQL or NATS datastore. It has no
// probes: kube-apiserver's readiness already fails when its storage does.
func kineContainer(in Input) corev1.Container {
	k := in.Kine
	dep := &in.TCP.Spec.ControlPlane.Deployment
	env := make([]corev1.EnvVar, 0, len(k.Env))
	for i := range k.Env {
		env = append(env, *k.Env[i].DeepCopy()) // order kept: $(VAR) references depend on it
	}
	c := corev1.Container{
		Name:  KineContainer,
		Image: k.Image,
		Args:  MergeArgs(k.Args, extraArgs(dep).Kine),
		Env:   env,
	}
	if k.FilesSecret != "" {
		path := k.FilesPath
		if path == "" {
			path = DefaultKineFilesPath
		}
		c.VolumeMounts = []corev1.VolumeMount{{Name: volumeKineFiles, MountPath: path, ReadOnly: true}}
	}
	finishContainer(&c, resources(dep).Kine, dep.SecurityContext, nil)
	return c
}
