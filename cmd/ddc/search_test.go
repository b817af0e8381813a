package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/pieces"
)

func TestSearchOffline(t *testing.T) {
	c := newCLI(t)
	keynote := strings.TrimSpace(c.ok("keynote bytes", "put", "-", "--path", "/talks/keynote.mp4", "-t", "year=2026", "-t", "secret=x", "--no-index", "secret"))
	notes := strings.TrimSpace(c.ok("%PDF-1.4 notes", "put", "-", "--path", "/talks/notes", "-t", "year=1999"))

	var a struct {
		Results []struct {
			CID  string
			Size uint64
			Tags []struct{ Key, Value string }
		}
		Cursor string
	}
	if err := json.Unmarshal([]byte(c.ok("", "search", "--json", "file-path^=/talks/")), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Results) != 2 || a.Results[0].CID != keynote || a.Results[1].CID != notes || a.Cursor != "" {
		t.Fatalf("prefix search: %+v", a)
	}
	tags := map[string]string{}
	for _, tg := range a.Results[1].Tags {
		tags[tg.Key] = tg.Value
	}
	if tags["content-type"] != "application/pdf" || tags["file-path"] != "/talks/notes" {
		t.Fatalf("put --path of a PDF without an extension: tags %v", tags)
	}
	if ts, err := time.Parse(pieces.TimestampLayout, tags["timestamp"]); err != nil || time.Since(ts) > time.Hour {
		t.Fatalf("timestamp tag %q: %v", tags["timestamp"], err)
	}
	if out := c.ok("", "search", "year>=2000"); !strings.Contains(out, keynote) || strings.Contains(out, notes) {
		t.Fatalf("year>=2000: %q", out)
	}
	if out := c.ok("", "search", "secret"); out != "" {
		t.Fatalf("a --no-index tag is found: %q", out)
	}
	if _, out, errs := c.run("", "search", "year", "--limit", "1"); !strings.Contains(out, notes) || !strings.Contains(errs, "more: --cursor ") {
		t.Fatalf("a first page of 1: %q, %q", out, errs)
	}

	other := strings.TrimSpace(strings.SplitN(c.errOf("search", "year", "--limit", "1"), "--cursor ", 2)[1])
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no terms", nil, "no terms"},
		{"empty key", []string{"=x"}, "empty key"},
		{"unknown operator", []string{"k!=v"}, "unknown operator"},
		{"over-long value", []string{"k=" + strings.Repeat("v", pieces.MaxTagValueLen+1)}, "value of 4097 bytes"},
		{"bad cursor", []string{"k", "--cursor", "nope"}, "cursor"},
		{"another query's cursor", []string{"k", "--cursor", other}, "another query"},
		{"limit", []string{"k", "--limit", "5000"}, "limit 5000"},
		{"token without bucket", []string{"k", "--token", "x"}, "needs -b"},
	} {
		code, _, errs := c.run("", append([]string{"search"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, %q; want %d saying %q", tc.name, code, errs, exitUsage, tc.want)
		}
	}
	if code, _, errs := c.run("", "get", "--path", "/talks/notes"); code != exitUsage || !strings.Contains(errs, "needs -b") {
		t.Errorf("get --path without -b: exit %d, %q", code, errs)
	}
	if code, _, errs := c.run("", "put", "-", "-t", "a=b", "--no-index", "c"); code != exitUsage || !strings.Contains(errs, "no tag of that key") {
		t.Errorf("--no-index of a tag not given: exit %d, %q", code, errs)
	}
}

// errOf is the stderr of a command that succeeds.
func (c *cli) errOf(args ...string) string {
	c.t.Helper()
	code, _, errs := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("ddc %v: exit %d: %s", args, code, errs)
	}
	return errs
}
