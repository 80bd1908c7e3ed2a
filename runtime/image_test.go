package engine

import (
	"errors"
	"testing"
)

func TestCacheRace(t *testing.T) {
	for msg, want := range map[string]bool{
		"unknown parent image ID sha256:1f37cfa9e2b5c183b88198aba6d1b17ef98fcacc78f7f04ed4128fc833edc4e4": true,
		"No such image: sha256:2c897df782cc":                        true,
		"COPY failed: file not found in build context":              false,
		"The command '/bin/sh -c make' returned a non-zero code: 2": false,
	} {
		if got := cacheRace(errors.New(msg)); got != want {
			t.Errorf("cacheRace(%q) = %v, want %v", msg, got, want)
		}
	}
}
