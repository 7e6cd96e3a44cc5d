package natshub

import "testing"

// feedNext passes the leader's head only when the consumer read the leader's copy: a
// consumer on a replica that lags covered only what it was delivered.
func TestFeedNext_NeverPassesWhatTheConsumerDidNotRead(t *testing.T) {
	cases := []struct {
		name        string
		since, head uint64
		headServer  string
		sc          scanned
		want        uint64
	}{
		{"lagging replica, nothing delivered", 13, 14, "n1", scanned{server: "n2"}, 13},
		{"lagging replica, some delivered", 10, 20, "n1", scanned{last: 15, server: "n2"}, 15},
		{"leader's copy, nothing delivered", 13, 14, "n1", scanned{server: "n1"}, 14},
		{"leader's copy, delivered past the head read before", 13, 14, "n1", scanned{last: 16, server: "n1"}, 16},
		{"one server, not clustered", 5, 9, "", scanned{last: 7}, 9},
		{"consumer's server unknown", 5, 9, "n1", scanned{}, 5},
		{"never below since", 30, 20, "n1", scanned{server: "n1"}, 30},
	}
	for _, c := range cases {
		if got := feedNext(c.since, c.head, c.headServer, c.sc); got != c.want {
			t.Errorf("%s: feedNext(%d, %d, %q, %+v) = %d, want %d", c.name, c.since, c.head, c.headServer, c.sc, got, c.want)
		}
	}
}
