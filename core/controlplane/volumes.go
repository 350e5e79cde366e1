package controlplane

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// One volume per Secret; names are fixed so that the pod template is stable.
const (
	volumeCA                          = "pki-ca"
	volumeAPIServer                   = "pki-apiserver"
	volumeAPIServerKubeletClient      = "pki-apiserver-kubelet-client"
	volumeFrontProxyCA                = "pki-front-proxy-ca"
	volumeFrontProxyClient            = "pki-front-proxy-client"
	volumeServiceAccount              = "pki-service-account"
	volumeDataStore                   = "pki-datastore"
	volumeControllerManagerKubeconfig = "kubeconfig-controller-manager"
	volumeSchedulerKubeconfig         = "kubeconfig-scheduler"
	volumeKineFiles                   = "kine-files"
)

// secretMode is owner and group read: keys stay unreadable to other users, and a pod running
// as non-root reads them through podSecurityContext.fsGroup.
const secretMode int32 = 0o440

// file is one Secret key landing at its kubeadm path.
type file struct {
	volume, key, path string
}

// Each file is mounted on its own (subPath) so that a container sees exactly the files it
// needs, at kubeadm's paths, and /etc/kubernetes stays an ordinary directory where users can
// add their own mounts. subPath mounts never see Secret updates; the checksum annotation
// rolls the pods instead.
var (
	fileCACert                = file{volumeCA, KeyCACert, pkiDir + "/ca.crt"}
	fileCAKey                 = file{volumeCA, KeyCAKey, pkiDir + "/ca.key"}
	fileCABundle              = file{volumeCA, KeyCABundle, pkiDir + "/ca-bundle.crt"}
	fileAPIServerCert         = file{volumeAPIServer, KeyAPIServerCert, pkiDir + "/apiserver.crt"}
	fileAPIServerKey          = file{volumeAPIServer, KeyAPIServerKey, pkiDir + "/apiserver.key"}
	fileKubeletClientCert     = file{volumeAPIServerKubeletClient, KeyAPIServerKubeletClientCert, pkiDir + "/apiserver-kubelet-client.crt"}
	fileKubeletClientKey      = file{volumeAPIServerKubeletClient, KeyAPIServerKubeletClientKey, pkiDir + "/apiserver-kubelet-client.key"}
	fileFrontProxyCACert      = file{volumeFrontProxyCA, KeyFrontProxyCACert, pkiDir + "/front-proxy-ca.crt"}
	fileFrontProxyClientCert  = file{volumeFrontProxyClient, KeyFrontProxyClientCert, pkiDir + "/front-proxy-client.crt"}
	fileFrontProxyClientKey   = file{volumeFrontProxyClient, KeyFrontProxyClientKey, pkiDir + "/front-proxy-client.key"}
	fileSAPublicKey           = file{volumeServiceAccount, KeyServiceAccountPublicKey, pkiDir + "/sa.pub"}
	fileSAPrivateKey          = file{volumeServiceAccount, KeyServiceAccountPrivateKey, pkiDir + "/sa.key"}
	fileDataStoreCACert       = file{volumeDataStore, KeyDataStoreCACert, etcdPKIDir + "/ca.crt"}
	fileDataStoreClientCert   = file{volumeDataStore, KeyDataStoreClientCert, etcdPKIDir + "/server.crt"}
	fileDataStoreClientKey    = file{volumeDataStore, KeyDataStoreClientKey, etcdPKIDir + "/server.key"}
	fileControllerManagerConf = file{volumeControllerManagerKubeconfig, KeyControllerManagerKubeconfig, kubeDir + "/controller-manager.conf"}
	fileSchedulerConf         = file{volumeSchedulerKubeconfig, KeySchedulerKubeconfig, kubeDir + "/scheduler.conf"}
)

func mounts(files ...file) []corev1.VolumeMount {
	out := make([]corev1.VolumeMount, 0, len(files))
	for _, f := range files {
		out = append(out, corev1.VolumeMount{Name: f.volume, MountPath: f.path, SubPath: f.key, ReadOnly: true})
	}
	return out
}

// coreVolumes are the Secret volumes of the PKI and kubeconfigs. Each projects only the keys
// some container mounts: the front-proxy CA key, for one, never reaches the node, and a
// missing key fails the pod start with a clear event instead of a confusing flag error.
func coreVolumes(in Input) []corev1.Volume {
	s := in.Secrets
	ca := []file{fileCACert, fileCAKey}
	if in.CATrustBundle {
		ca = append(ca, fileCABundle)
	}
	return []corev1.Volume{
		secretVolume(volumeCA, s.CA, ca...),
		secretVolume(volumeAPIServer, s.APIServer, fileAPIServerCert, fileAPIServerKey),
		secretVolume(volumeAPIServerKubeletClient, s.APIServerKubeletClient, fileKubeletClientCert, fileKubeletClientKey),
		secretVolume(volumeFrontProxyCA, s.FrontProxyCA, fileFrontProxyCACert),
		secretVolume(volumeFrontProxyClient, s.FrontProxyClient, fileFrontProxyClientCert, fileFrontProxyClientKey),
		secretVolume(volumeServiceAccount, s.ServiceAccount, fileSAPublicKey, fileSAPrivateKey),
		secretVolume(volumeControllerManagerKubeconfig, s.ControllerManagerKubeconfig, fileControllerManagerConf),
		secretVolume(volumeSchedulerKubeconfig, s.SchedulerKubeconfig, fileSchedulerConf),
	}
}

func secretVolume(name, secret string, files ...file) corev1.Volume {
	items := make([]corev1.KeyToPath, 0, len(files))
	for _, f := range files {
		items = append(items, corev1.KeyToPath{Key: f.key, Path: f.key})
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		Items:       items,
		DefaultMode: ptr.To(secretMode),
	}}}
}

// clientCA is the file the components trust for client certificates and publish to pods.
func clientCA(in Input) file {
	if in.CATrustBundle {
		return fileCABundle
	}
	return fileCACert
}

// caFiles is the CA certificate (and the trust bundle during an overlap) followed by others:
// the mounts of a container that trusts the tenant CA.
func caFiles(in Input, others ...file) []file {
	out := []file{fileCACert}
	if in.CATrustBundle {
		out = append(out, fileCABundle)
	}
	return append(out, others...)
}

// copyVolumes deep-copies volumes, sorted by name when the caller's order carries no meaning.
func copyVolumes(in []corev1.Volume, sortByName bool) []corev1.Volume {
	out := make([]corev1.Volume, 0, len(in))
	for i := range in {
		out = append(out, *in[i].DeepCopy())
	}
	if sortByName {
		slices.SortStableFunc(out, func(a, b corev1.Volume) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

func copyMounts(in []corev1.VolumeMount) []corev1.VolumeMount {
	out := make([]corev1.VolumeMount, 0, len(in))
	for i := range in {
		out = append(out, *in[i].DeepCopy())
	}
	return out
}
