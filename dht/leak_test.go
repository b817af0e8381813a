package dht_test

import (
	"testing"

	"github.com/ddc-project/ddc/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
