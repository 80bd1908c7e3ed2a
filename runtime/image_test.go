package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
)

func TestCacheRace(t *testing.T) {
	for msg, want := range map[string]bool{
		"unknown parent image ID sha256:1f37cfa9e2b5c183b88198aba6d1b17ef98fcacc78f7f04ed4128fc833edc4e4": true,
		"No such image: sha256:2c897df782cc": true,
		"failed to get digest sha256:ba8058bfb36d2a1a821b4ac2b2e27b14a1ff5f720fde1c10604d0fff12611629: open /var/lib/docker/image/overlay2/imagedb/content/sha256/ba8058bfb36d2a1a821b4ac2b2e27b14a1ff5f720fde1c10604d0fff12611629: no such file or directory": true,
		`unable to find image "sha256:1386c26f4d82013fc0ad00a7c631f9ae20ff836b28b4c2fe411f6f3fcfd8b30f"`:                            true,
		"checking if cached image exists from a previous build: getting top layer info: layer not known":                            true,
		`preparing container for next step: creating build container: locating image with ID "d238e7a9d4d0": image not known`:       true,
		"identifier is not a container: preparing container for next step: creating build container: d0ee8eaf9f32: image not known": true,
		"COPY failed: file not found in build context":                                                                              false,
		"The command '/bin/sh -c make' returned a non-zero code: 2":                                                                 false,
	} {
		if got := cacheRace(errors.New(msg)); got != want {
			t.Errorf("cacheRace(%q) = %v, want %v", msg, got, want)
		}
	}
}

// TestBuildWhileCachedLayersAreRemoved builds an image whose layers come
// from another image's cache while that image is removed, as happens when
// one app's old releases are pruned while another app builds the same
// steps: every build must still succeed.
func TestBuildWhileCachedLayersAreRemoved(t *testing.T) {
	e := testEngine(t, Options{})
	ctx := context.Background()
	run := uniq(t)
	// Files of this run only, so no other test's images hold the layers.
	dir := helloContext(t, helloDockerfile, map[string]string{"run.txt": run})
	dockerfile := "FROM scratch\nCOPY run.txt /run.txt\nCOPY hello /hello\nEXPOSE 5000\nCMD [\"/hello\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(tag, label string, out io.Writer) error {
		return e.BuildImage(ctx, apps.ImageBuild{
			Dir: dir, Dockerfile: "Dockerfile", Tag: tag,
			Labels: map[string]string{"rivetr.test": run, "rivetr.step": label}, Out: out,
		})
	}
	victim, built := "rivetr-test/victim-"+run+":1", "rivetr-test/builder-"+run+":1"
	t.Cleanup(func() {
		e.RemoveImage(context.Background(), victim)
		e.RemoveImage(context.Background(), built)
	})
	retried := 0
	for i := range 8 {
		if err := build(victim, "victim", io.Discard); err != nil {
			t.Fatalf("round %d: building the image that holds the cache: %v", i, err)
		}
		var wg sync.WaitGroup
		var removeErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each round removes it a little later into the build.
			time.Sleep(time.Duration(i) * 40 * time.Millisecond)
			removeErr = e.RemoveImage(ctx, victim)
		}()
		out := &writeLog{}
		err := build(built, fmt.Sprintf("round-%d", i), out)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: build while its cached layers were removed: %v\n%s", i, err, out)
		}
		if removeErr != nil && strings.Contains(removeErr.Error(), "in use") {
			// Podman refuses while its build container holds the image;
			// pruning tries again later, and so does this test.
			removeErr = e.RemoveImage(ctx, victim)
		}
		if removeErr != nil {
			t.Fatalf("round %d: remove: %v", i, removeErr)
		}
		if strings.Contains(out.String(), "building again") {
			retried++
		}
		if err := e.RemoveImage(ctx, built); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of 8 builds lost a cached layer and built again", retried)
}
