package tenantcontrolplane

import (
	"context"
	"maps"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// stepAddonFiles keeps the ConfigMap <tcp>-addon-files with the files addons add to
// kube-apiserver (konnectivity's egress selector configuration), owned by the TCP; its content
// is part of the pod template checksum, since the files are mounted by subPath. Without files,
// the ConfigMap is removed.
func stepAddonFiles(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionAddonsReady
	name := AddonFilesConfigMapName(p.tcp.Name)
	kst := &p.status.Addons.Konnectivity.ConfigMap
	if len(p.addonFiles) == 0 {
		cur := &corev1.ConfigMap{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: name}, cur)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fail(cond, ReasonAddonApplyFailed, err)
		default:
			if err := apply.Delete(ctx, r.Client, cur); err != nil {
				return fail(cond, ReasonAddonApplyFailed, err)
			}
		}
		*kst = kamajiv1alpha1.KonnectivityConfigMap{}
		return nil
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.tcp.Namespace, Labels: exposure.Labels(p.tcp)},
	}
	for k, v := range p.addonFiles {
		if utf8.Valid(v) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[k] = string(v)
			continue
		}
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		cm.BinaryData[k] = v
	}
	owned(p.tcp, cm)
	cur := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(cm), cur)
	if err != nil || !sameConfigMap(cur, cm) {
		if err := apply.Apply(ctx, r.Client, cm); err != nil {
			return fail(cond, ReasonAddonApplyFailed, err)
		}
	}
	// The pods mount the files by subPath: a change must roll them, like a Secret's.
	p.addSecret("configmap/"+name, p.addonFiles)
	if _, ok := p.renders[AddonKonnectivity]; ok {
		kst.Name, kst.Checksum = name, tenantpki.Checksum(p.addonFiles)
	} else {
		*kst = kamajiv1alpha1.KonnectivityConfigMap{}
	}
	return nil
}

// sameConfigMap tells whether cur already holds what want declares: no write then.
func sameConfigMap(cur, want *corev1.ConfigMap) bool {
	return equality.Semantic.DeepEqual(cur.Data, want.Data) && equality.Semantic.DeepEqual(cur.BinaryData, want.BinaryData) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) && maps.Equal(cur.Labels, want.Labels)
}
