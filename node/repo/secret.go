package repo

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// secretFile holds the API secret, owner-only: the token an API that
// listens beyond loopback asks every request for. The CLI reads it from
// the repo, so it needs no flag.
const secretFile = "api.secret"

// makeSecret writes a new API secret into the repo at path.
func makeSecret(path string) error {
	b := make([]byte, 32)
	rand.Read(b)
	if err := writeFileAtomic(filepath.Join(path, secretFile), []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the API secret: %w", err)
	}
	return nil
}

// ensureSecret gives a repo made before the API secret one.
func ensureSecret(path string) error {
	_, err := os.Stat(filepath.Join(path, secretFile))
	if errors.Is(err, fs.ErrNotExist) {
		return makeSecret(path)
	}
	return err
}

// APISecret reads the API secret of the repo at path.
func APISecret(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(path, secretFile))
	if err != nil {
		return "", fmt.Errorf("read the API secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return "", fmt.Errorf("%w: the API secret in %s is %d characters, want at least 16", ErrConfig, filepath.Join(path, secretFile), len(s))
	}
	return s, nil
}

// Loopback reports whether the API address a (host:port) is a loopback
// IP, where the API asks no secret.
func Loopback(a string) bool {
	host, _, err := net.SplitHostPort(a)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}
