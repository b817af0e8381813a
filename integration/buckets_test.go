package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type bucketInfo struct {
	ID, Owner, Cluster, Access, Label string
	Seq                               uint64
}

func (r *repo) bucket(id string) (bucketInfo, error) {
	r.t.Helper()
	code, out, errs := r.run(nil, "bucket", "show", id, "--json")
	var b bucketInfo
	if code != 0 {
		return b, &exitError{code, errs}
	}
	return b, json.Unmarshal([]byte(out), &b)
}

type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// TestBucketRecordsAcrossNodes: a bucket made on one running node is found
// by another through the DHT; a new version published by the owner
// replaces it there; the second node keeps the newest version it saw and
// still shows it after a restart with the first node gone.
func TestBucketRecordsAcrossNodes(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	id := strings.TrimSpace(n1.ok(nil, "bucket", "create", "--name", "talks"))

	var got bucketInfo
	waitFor(t, "node 2 to find the bucket", 30*time.Second, func() bool {
		b, err := n2.bucket(id)
		got = b
		return err == nil
	})
	if got.ID != id || got.Access != "public" || got.Label != "talks" || got.Seq != 1 || got.Cluster != "default" {
		t.Fatalf("node 2 found %+v", got)
	}
	n1.ok(nil, "bucket", "set", id, "--private")
	waitFor(t, "node 2 to see version 2", 30*time.Second, func() bool {
		b, err := n2.bucket(id)
		got = b
		return err == nil && b.Seq == 2
	})
	if got.Access != "private" {
		t.Fatalf("version 2 on node 2: %+v", got)
	}

	n1.stop(t)
	n2.stop(t)
	n2 = startDaemon(t, n2.repo)
	if b, err := n2.bucket(id); err != nil || b.Seq != 2 || b.Access != "private" {
		t.Fatalf("node 2 after a restart without node 1: %+v, %v", b, err)
	}
}
