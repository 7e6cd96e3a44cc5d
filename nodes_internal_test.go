package pivot

import (
	"net"
	"testing"
)

func TestNodeAddress(t *testing.T) {
	cases := []struct {
		data string
		want string
		ok   bool
	}{
		{`{"ip":"10.0.0.5:8080"}`, "10.0.0.5:8080", true},
		{`{"ip":"10.0.0.5","port":8080}`, "10.0.0.5:8080", true},
		{`{"ip":"10.0.0.5","port":"8080"}`, "10.0.0.5:8080", true},
		{`{"ip":"thing.local:9","port":"8080"}`, "thing.local:8080", true},
		{`{"ip":"::1","port":80}`, "[::1]:80", true},
		{`{"ip":"[::1]:80"}`, "[::1]:80", true},
		{`{"ip":"https://10.0.0.5:8443"}`, "https://10.0.0.5:8443", true},
		{`{"ip":"http://10.0.0.5:80/"}`, "http://10.0.0.5:80", true},
		{`{"ip":"https://10.0.0.5","port":8443}`, "https://10.0.0.5:8443", true},
		{`{"ip":"ftp://10.0.0.5:21"}`, "", false},
		{`{"ip":"https://10.0.0.5:8443/path"}`, "", false},
		{`{"ip":"10.0.0.5"}`, "", false},
		{`{"ip":"10.0.0.5","port":0}`, "", false},
		{`{"ip":"10.0.0.5","port":70000}`, "", false},
		{`{"ip":"10.0.0.5","port":"http"}`, "", false},
		{`{"ip":"10.0.0.5","port":80.5}`, "", false},
		{`{"ip":"10.0.0.5","port":true}`, "", false},
		{`{"ip":":8080"}`, "", false},
		{`{"ip":""}`, "", false},
		{`{"name":"no address"}`, "", false},
		{`"10.0.0.5:8080"`, "", false},
		{`[]`, "", false},
		{`not json`, "", false},
	}
	for _, tc := range cases {
		got, ok := nodeAddress([]byte(tc.data))
		if ok != tc.ok || got != tc.want {
			t.Errorf("nodeAddress(%s) = %q, %v; want %q, %v", tc.data, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzNodeAddress(f *testing.F) {
	for _, s := range []string{`{"ip":"a:1"}`, `{"ip":"a","port":1}`, `{"ip":"a","port":"1"}`, `{"ip":"[::1]:2"}`, `{}`, `x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		addr, ok := nodeAddress([]byte(data))
		if !ok {
			return
		}
		_, hostport, err := splitAddress(addr)
		if err != nil {
			t.Fatalf("nodeAddress(%q) = %q: %v", data, addr, err)
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil || host == "" || !validPort(port) {
			t.Fatalf("nodeAddress(%q) = %q: not a usable host:port", data, addr)
		}
	})
}

func TestNodeEntryKey(t *testing.T) {
	if got := nodeEntryKey("things/*", "127.0.0.1:8080"); got != "things/127.0.0.1_8080" {
		t.Fatalf("got %q", got)
	}
	if got := nodeEntryKey("things/*", "[::1]:80"); got != "things/___1__80" {
		t.Fatalf("got %q", got)
	}
}

func TestBackoff_GrowsAndIsCapped(t *testing.T) {
	e := &syncEngine{cfg: Config{BackoffMin: 10, BackoffMax: 100}}
	none := func(int64) int64 { return 0 }
	want := []int64{10, 20, 40, 80, 100, 100}
	for i, w := range want {
		if got := e.backoff(i+1, none); int64(got) != w {
			t.Fatalf("backoff(%d) = %d, want %d", i+1, got, w)
		}
	}
	full := func(n int64) int64 { return n - 1 }
	if got := e.backoff(3, full); got < 20 || got > 40 {
		t.Fatalf("jittered backoff %d outside [20,40]", got)
	}
}
