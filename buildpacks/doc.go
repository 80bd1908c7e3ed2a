// Package buildpacks detects how to build an app's code and builds it into
// an image. Builders implement apps.Builder; the Dockerfile builder hands
// the code to the container engine (apps.ImageBuilder).
package buildpacks
