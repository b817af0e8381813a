package store

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
)

// SetVersion rewrites the format version of the closed store in dir.
func SetVersion(t *testing.T, dir string, v uint64) {
	t.Helper()
	db, err := leveldb.OpenFile(filepath.Join(dir, "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put([]byte(keyVersion), binary.AppendUvarint(nil, v), nil); err != nil {
		t.Fatal(err)
	}
}
