package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/node/api"
)

// cli runs ddc in-process against one repo.
type cli struct {
	t    *testing.T
	repo string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	c := &cli{t: t, repo: filepath.Join(t.TempDir(), "repo")}
	c.ok("", "init")
	return c
}

func (c *cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"--repo", c.repo}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("ddc %v: exit %d: %s", args, code, errs)
	}
	return out
}

func TestPutGetCatStat(t *testing.T) {
	c := newCLI(t)
	content := strings.Repeat("0123456789", 1000) // 10,000 bytes: head + chunks at 1 KiB
	id := strings.TrimSpace(c.ok(content, "put", "-", "--chunk-size", "1K", "-t", "title=ten thousand", "-t", "n=1"))
	if again := strings.TrimSpace(c.ok(content, "put", "-", "--chunk-size", "1K", "-t", "title=ten thousand", "-t", "n=1")); again != id {
		t.Fatalf("same input gave %s then %s", id, again)
	}
	if got := c.ok("", "cat", id); got != content {
		t.Fatalf("cat returned %d bytes", len(got))
	}
	if got := c.ok("", "cat", id, "--offset", "4090", "--length", "20"); got != content[4090:4110] {
		t.Fatalf("cat range = %q", got)
	}
	if got := c.ok("", "cat", id, "--offset", "9995"); got != content[9995:] {
		t.Fatalf("cat tail = %q", got)
	}
	out := filepath.Join(t.TempDir(), "out")
	c.ok("", "get", id, "-o", out)
	if b, _ := os.ReadFile(out); string(b) != content {
		t.Fatal("get wrote other bytes")
	}
	var st struct {
		CID                         string
		Size, Pieces, Depth, Inline int
		Tags                        []struct{ Key, Value string }
	}
	if err := json.Unmarshal([]byte(c.ok("", "stat", id, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	// 4096 inline + 5904 in 1 KiB chunks = 6 chunks + the root.
	if st.CID != id || st.Size != 10_000 || st.Pieces != 7 || st.Depth != 0 || st.Inline != 4096 || len(st.Tags) != 2 || st.Tags[0].Value != "ten thousand" {
		t.Fatalf("stat %+v", st)
	}
	human := c.ok("", "stat", id)
	for _, want := range []string{"size    9.8 KiB (10000 bytes)", "pieces  7 (1 descriptors)", "tag     title=ten thousand"} {
		if !strings.Contains(human, want) {
			t.Errorf("stat output lacks %q:\n%s", want, human)
		}
	}
	var ls []struct {
		CID  string
		Size int
	}
	if err := json.Unmarshal([]byte(c.ok("", "ls", "--json")), &ls); err != nil || len(ls) != 1 || ls[0].CID != id || ls[0].Size != 10_000 {
		t.Fatalf("ls %+v %v", ls, err)
	}
	var put struct {
		CID    string
		Size   int
		Pieces int
	}
	json.Unmarshal([]byte(c.ok("x", "put", "-", "--json")), &put)
	if put.Size != 1 || put.Pieces != 1 || !strings.HasPrefix(put.CID, "bafy") {
		t.Fatalf("put --json %+v", put)
	}
}

func TestBadInputExitCodes(t *testing.T) {
	c := newCLI(t)
	id := strings.TrimSpace(c.ok("hello", "put", "-"))
	c.ok("", "repo", "stat") // the repo works before the bad calls
	before := snapshot(t, c.repo)
	// A CID that parses but is not in the repo: put into another repo.
	other := newCLI(t)
	absent := strings.TrimSpace(other.ok("absent", "put", "-"))
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"malformed CID", "", []string{"get", "bafy-nope"}, exitUsage, "invalid CID"},
		{"dag-pb CID", "", []string{"cat", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"}, exitUsage, "not a ddc file descriptor"},
		{"unknown hash", "x", []string{"put", "-", "--hash", "md5"}, exitUsage, `"md5"`},
		{"tag without =", "x", []string{"put", "-", "-t", "novalue"}, exitUsage, `"novalue"`},
		{"bad chunk size", "x", []string{"put", "-", "--chunk-size", "lots"}, exitUsage, "--chunk-size"},
		{"chunk too large", "x", []string{"put", "-", "--chunk-size", "5M"}, exitUsage, "chunk size"},
		{"unknown chunker", "x", []string{"put", "-", "--chunker", "rabin"}, exitUsage, `"rabin"`},
		{"chunk size with cdc", "x", []string{"put", "-", "--chunker", "cdc", "--chunk-size", "2M"}, exitUsage, "--chunk-size is for --chunker fixed"},
		{"unreadable input", "", []string{"put", "/nonexistent/file"}, exitIO, "/nonexistent/file"},
		{"directory input", "", []string{"put", t.TempDir()}, exitUsage, "is a directory"},
		{"absent file", "", []string{"get", absent}, exitNotFound, absent},
		{"negative offset", "", []string{"cat", id, "--offset", "-1"}, exitUsage, "negative"},
		{"offset past end", "", []string{"cat", id, "--offset", "6"}, exitUsage, "past the end"},
		{"unknown flag", "", []string{"put", "--frobnicate"}, exitUsage, "frobnicate"},
		{"missing argument", "", []string{"stat"}, exitUsage, "accepts 1 arg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := c.run(tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "ddc: ") {
				t.Errorf("stderr %q: want one line saying %q", errs, tc.want)
			}
		})
	}
	if after := snapshot(t, c.repo); after != before {
		t.Errorf("failed commands changed the repo:\n%s\n---\n%s", before, after)
	}
	// No repo: an error naming it, and nothing created.
	nothing := filepath.Join(t.TempDir(), "none")
	nc := &cli{t: t, repo: nothing}
	for _, args := range [][]string{{"put", "-"}, {"ls"}, {"get", id}, {"stat", id}} {
		code, _, errs := nc.run("x", args...)
		if code != exitNotFound || !strings.Contains(errs, "not initialized") || !strings.Contains(errs, nothing) {
			t.Errorf("%v without a repo: exit %d, %q", args, code, errs)
		}
	}
	if _, err := os.Stat(nothing); !os.IsNotExist(err) {
		t.Error("a command without a repo created it")
	}
	if code, _, errs := c.run("", "init"); code == 0 || !strings.Contains(errs, "already initialized") {
		t.Errorf("init twice: %d %q", code, errs)
	}
}

// snapshot lists the repo's block files and their sizes: any write shows.
func snapshot(t *testing.T, repo string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(filepath.Join(repo, "store", "blocks"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			fmt.Fprintf(&b, "%s %d %s\n", p, fi.Size(), fi.ModTime())
		}
		return nil
	})
	return b.String()
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1K": 1024, "4KiB": 4096, "1MiB": 1 << 20, "2G": 2 << 30, "7B": 7,
		"1MB": 1 << 20, "1k": 1024, "2 mb": 2 << 20, "1kib": 1024, "3g": 3 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5M", "K", "1T", "99999999999G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// TestExitCodesFollowTheAPITable: the exit codes README.md documents are
// the ones api.Classify hands out, for errors made offline and for errors
// the node sent back through its API.
func TestExitCodesFollowTheAPITable(t *testing.T) {
	for class, want := range map[api.Class]int{api.ClassUsage: exitUsage, api.ClassNotFound: exitNotFound,
		api.ClassCorrupt: exitCorrupt, api.ClassIO: exitIO, api.ClassDenied: exitDenied, api.ClassQuota: exitQuota, api.ClassInternal: exitError} {
		if class.Exit != want {
			t.Errorf("class %s exits %d, README says %d", class.Code, class.Exit, want)
		}
		back := &api.Error{Code: class.Code, Message: "from the node"}
		if class != api.ClassInternal && exitCode(back) != want {
			t.Errorf("an API error coded %s exits %d, want %d", class.Code, exitCode(back), want)
		}
	}
	if got := exitCode(usageErr(errors.New("bad flag"))); got != exitUsage {
		t.Errorf("usage error exits %d", got)
	}
}

// TestCLIDetails: bad usage exits 2, long arguments are not echoed whole,
// keys from other peers cannot forge output lines, and a closed stdin is
// not an empty file.
func TestCLIDetails(t *testing.T) {
	c := newCLI(t)
	if code, _, errs := c.run("", "frobnicate"); code != exitUsage || !strings.Contains(errs, "frobnicate") {
		t.Errorf("unknown command: exit %d, %q", code, errs)
	}
	long := "k=" + strings.Repeat("v", 100_000)
	if code, _, errs := c.run("x", "put", "-", "-t", long); code != exitUsage || len(errs) > 400 || !strings.Contains(errs, "100002 bytes") {
		t.Errorf("100 KB tag: exit %d, %d bytes of error", code, len(errs))
	}
	for key, want := range map[string]string{"title": "title", "a\nb": `"a\nb"`, "bell\a": `"bell\a"`, "x=y": `"x=y"`, "esc\x1b[2J": `"esc\x1b[2J"`} {
		if got := printableKey(key); got != want {
			t.Errorf("printableKey(%q) = %s, want %s", key, got, want)
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStdin(null); exitCode(err) != exitUsage {
		t.Errorf("stdin on /dev/null (what Go gives a closed fd 0): %v", err)
	}
	null.Close()
	if err := checkStdin(null); exitCode(err) != exitUsage {
		t.Errorf("closed stdin: %v", err)
	}
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if err := checkStdin(r); err != nil {
		t.Errorf("stdin on a pipe refused: %v", err)
	}
}

// TestKeys: keys are made, listed after the node's identity, exported and
// imported into another repo as the same account; bad names, a name taken
// and text that is no key are usage errors, an unknown key is not found.
func TestKeys(t *testing.T) {
	c := newCLI(t)
	alice := strings.TrimSpace(c.ok("", "key", "gen", "alice"))
	if !strings.HasPrefix(alice, "did:key:z6Mk") {
		t.Fatalf("key gen printed %q, want a did:key", alice)
	}
	ls := c.ok("", "key", "ls")
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "self ") || !strings.HasPrefix(lines[1], "alice ") || !strings.HasSuffix(lines[1], alice) {
		t.Fatalf("key ls: %q", ls)
	}
	fi, err := os.Stat(filepath.Join(c.repo, "keys", "alice.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v, want mode 0600", fi, err)
	}
	secret := c.ok("", "key", "export", "alice")
	other := newCLI(t)
	if got := strings.TrimSpace(other.ok(secret, "key", "import", "alice2", "-")); got != alice {
		t.Fatalf("imported key is %s, exported %s", got, alice)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
	}{
		{"", []string{"key", "gen", "alice"}, 2},               // taken
		{"", []string{"key", "gen", "self"}, 2},                // the identity
		{"", []string{"key", "gen", "Al/ice"}, 2},              // not a name
		{"", []string{"key", "export", "bob"}, 3},              // no such key
		{"ddcsk1nope", []string{"key", "import", "b", "-"}, 2}, // not a key
		{"", []string{"key", "gen"}, 2},
	} {
		if code, _, errs := c.run(tc.stdin, tc.args...); code != tc.code || errs == "" {
			t.Errorf("ddc %v: exit %d (%q), want %d", tc.args, code, errs, tc.code)
		}
	}
}

// TestBucketsOffline: without a node, buckets are made, listed, shown and
// changed in the repo; only the owner's key can change one; bad IDs and
// flags are usage errors, an unknown bucket is not found.
func TestBucketsOffline(t *testing.T) {
	c := newCLI(t)
	code, out, errs := c.run("", "bucket", "create", "--name", "talks")
	id := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(id, "ddcb") || !strings.Contains(errs, "published when one runs") {
		t.Fatalf("bucket create: exit %d, %q, %q", code, out, errs)
	}
	if ls := c.ok("", "bucket", "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "public") || !strings.Contains(ls, `"talks"`) {
		t.Fatalf("bucket ls: %q", ls)
	}
	c.ok("", "key", "gen", "alice")
	other := strings.TrimSpace(c.ok("", "bucket", "create", "--private", "--key", "alice"))
	if show := c.ok("", "bucket", "show", other); !strings.Contains(show, "private") || !strings.Contains(strings.Join(strings.Fields(show), " "), "version 1") {
		t.Fatalf("bucket show: %q", show)
	}
	if out := c.ok("", "bucket", "set", id, "--private", "--name", "old talks"); !strings.Contains(out, "version 2") {
		t.Fatalf("bucket set: %q", out)
	}
	var info struct{ Access, Label string }
	if err := json.Unmarshal([]byte(c.ok("", "bucket", "show", id, "--json")), &info); err != nil || info.Access != "private" || info.Label != "old talks" {
		t.Fatalf("after set: %+v, %v", info, err)
	}
	stranger := newCLI(t)
	os.MkdirAll(filepath.Join(stranger.repo, "buckets"), 0o700)
	b, _ := os.ReadFile(filepath.Join(c.repo, "buckets", id))
	os.WriteFile(filepath.Join(stranger.repo, "buckets", id), b, 0o600)
	unknown := strings.TrimSpace(stranger.ok("", "bucket", "create"))
	for _, tc := range []struct {
		cli  *cli
		args []string
		code int
	}{
		{stranger, []string{"bucket", "set", id, "--public"}, 3}, // no owner key here
		{c, []string{"bucket", "set", id, "--public", "--key", "alice"}, 2},
		{c, []string{"bucket", "set", id}, 2},
		{c, []string{"bucket", "set", id, "--public", "--private"}, 2},
		{c, []string{"bucket", "show", "ddcbnotanid"}, 2},
		{c, []string{"bucket", "show", unknown}, 3},
		{c, []string{"bucket", "create", "--key", "nobody"}, 3},
		{c, []string{"bucket", "create", "--name", strings.Repeat("x", 200)}, 2},
	} {
		if code, _, errs := tc.cli.run("", tc.args...); code != tc.code || errs == "" {
			t.Errorf("ddc %v: exit %d (%q), want %d", tc.args, code, errs, tc.code)
		}
	}
}
