package directio

import (
	"testing"
	"unsafe"
)

func TestBuffer(t *testing.T) {
	for _, n := range []int{1, Alignment, 4 << 20} {
		b := Buffer(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Buffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if a := uintptr(unsafe.Pointer(&b[0])) % Alignment; a != 0 {
			t.Fatalf("Buffer(%d) starts %d bytes past a boundary", n, a)
		}
	}
	for n, want := range map[int]int{0: 0, 1: Alignment, Alignment: Alignment, Alignment + 1: 2 * Alignment} {
		if got := Pad(n); got != want {
			t.Errorf("Pad(%d) = %d, want %d", n, got, want)
		}
	}
}
