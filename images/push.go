package main

import (
	"context"
	"fmt"
	"os"
	"path"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push uploads the archive to the reference it was built for or, when registry is set, to
// registry/<name>:<tag>. Credentials come from the Docker config (~/.docker/config.json, as
// `crane auth login` or `docker login` write it). It returns the reference and the digest pushed.
func Push(ctx context.Context, archive, registry string) (string, v1.Hash, error) {
	dir, err := os.MkdirTemp("", "kamaji-push-")
	if err != nil {
		return "", v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	a, err := ReadArchive(archive, dir)
	if err != nil {
		return "", v1.Hash{}, err
	}
	built, err := name.NewTag(a.Ref(), name.StrictValidation)
	if err != nil {
		return "", v1.Hash{}, fmt.Errorf("%s: annotation %s: %w", archive, AnnotationContainer, err)
	}
	ref := built
	if registry != "" {
		s := registry + "/" + path.Base(built.RepositoryStr()) + ":" + built.TagStr()
		if ref, err = name.NewTag(s, name.StrictValidation); err != nil {
			return "", v1.Hash{}, fmt.Errorf("--registry: %q does not make a reference: %w", s, err)
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if a.Entry.MediaType.IsImage() {
		imgs, err := a.Images()
		if err != nil {
			return "", v1.Hash{}, err
		}
		return ref.String(), a.Entry.Digest, remote.Write(ref, imgs[0], opts...)
	}
	idx, err := a.Index()
	if err != nil {
		return "", v1.Hash{}, err
	}
	return ref.String(), a.Entry.Digest, remote.WriteIndex(ref, idx, opts...)
}
