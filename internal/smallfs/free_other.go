//go:build !linux

package smallfs

import "errors"

func freeSpace(string) (int64, error) {
	return 0, errors.New("smallfs reads free space on Linux only")
}
