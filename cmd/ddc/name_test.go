package main

import (
	"strings"
	"testing"
)

// The name commands check their names before they need a node, and say
// what to start when none runs.
func TestNameCommandsOffline(t *testing.T) {
	c := newCLI(t)
	id := strings.TrimSpace(c.ok("hello", "put", "-"))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"name", "publish", "a//b", id}, exitUsage, "between slashes"},
		{[]string{"name", "resolve", "bad\x01name"}, exitUsage, "control character"},
		{[]string{"name", "log", "-b", "ddcbnope", "site"}, exitUsage, "bucket"},
		{[]string{"name", "resolve", "did:key:z6Mknope"}, exitUsage, "did:key:…/NAME"},
		{[]string{"name", "resolve", "did:key:z6Mknope/home"}, exitUsage, "did:key"},
		{[]string{"name", "publish", "site", id}, exitError, "node run"},
		{[]string{"name", "publish", "site"}, exitUsage, "accepts 2 arg"},
	} {
		code, _, errs := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("ddc %q: exit %d, %q; want exit %d saying %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
