package client

import (
	"testing"
	"time"
)

func TestBackoff_Schedule(t *testing.T) {
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{1, ReconnectFast}, {29, ReconnectFast},
		{30, ReconnectSlow}, {99, ReconnectSlow},
		{100, ReconnectIdle}, {1 << 30, ReconnectIdle},
	}
	for _, c := range cases {
		if got := backoff(c.failures); got != c.want {
			t.Errorf("backoff(%d) = %s, want %s", c.failures, got, c.want)
		}
	}
}

func TestDecodeState(t *testing.T) {
	type thing struct{ N int }
	t.Run("missing key into a non-object type gives the zero value", func(t *testing.T) {
		got, err := decodeState[int]([]byte(`{ "created": 0, "updated": 0, "index": "", "data": {} }`))
		if err != nil || len(got) != 1 || got[0] != (Meta[int]{}) {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("a stored value that does not fit is skipped, not fatal", func(t *testing.T) {
		_, err := decodeState[thing]([]byte(`{"created":5,"updated":0,"index":"a","path":"a","data":"text"}`))
		if err != errSkip {
			t.Fatalf("err = %v, want errSkip", err)
		}
	})
	t.Run("list items that do not fit are dropped", func(t *testing.T) {
		got, err := decodeState[thing]([]byte(` [{"created":1,"index":"a","data":{"N":1}},{"created":2,"index":"b","data":"x"}]`))
		if err != nil || len(got) != 1 || got[0].Index != "a" || got[0].Data.N != 1 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("empty list is empty and non-nil", func(t *testing.T) {
		got, err := decodeState[thing]([]byte(`[]`))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
}
