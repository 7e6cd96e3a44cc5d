package pivot_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
)

func TestConfig_Validate(t *testing.T) {
	valid := testConfig()
	noErr(t, valid.Validate())
	noErr(t, pivot.Config{NodesKey: "things/*"}.Validate(), "a NodesKey alone is enough")

	cases := []struct {
		field  string
		change func(*pivot.Config)
	}{
		{"Keys", func(c *pivot.Config) { c.Keys, c.NodesKey = nil, "" }},
		{"Keys[0].Path", func(c *pivot.Config) { c.Keys[0].Path = "bad key!" }},
		{"Keys[1].Path", func(c *pivot.Config) { c.Keys[1].Path = "users/1" }},
		{"NodesKey", func(c *pivot.Config) { c.NodesKey = "things" }},
		{"NodesKey", func(c *pivot.Config) { c.NodesKey = "users/*/x"; c.Keys[0].Path = "users/*/*" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/pivot" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "pivot~" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/~pivot/" }},
		{"RoutePrefix", func(c *pivot.Config) { c.RoutePrefix = "/~pi vot" }},
		{"Token", func(c *pivot.Config) { c.Token = "two words" }},
		{"ClusterID", func(c *pivot.Config) { c.ClusterID = strings.Repeat("x", 200) }},
		{"Advertise", func(c *pivot.Config) { c.Advertise = "no-port" }},
		{"Advertise", func(c *pivot.Config) { c.Advertise = "host:99999" }},
		{"Advertise", func(c *pivot.Config) { c.Advertise, c.NodesKey = "host:80", "" }},
		{"RequestTimeout", func(c *pivot.Config) { c.RequestTimeout = -time.Second }},
		{"BatchSize", func(c *pivot.Config) { c.BatchSize = -1 }},
		{"MaxBodyBytes", func(c *pivot.Config) { c.MaxBodyBytes = -1 }},
		{"FanOut", func(c *pivot.Config) { c.FanOut = -1 }},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d_%s", i, tc.field), func(t *testing.T) {
			c := testConfig()
			c.Keys = append([]pivot.Key(nil), c.Keys...)
			tc.change(&c)
			err := c.Validate()
			isTrue(t, err != nil, "invalid config accepted")
			isTrue(t, errors.Is(err, pivot.ErrInvalidConfig), "wraps ErrInvalidConfig: %v", err)
			isTrue(t, strings.Contains(err.Error(), tc.field+":"), "names %s: %v", tc.field, err)
		})
	}
}

func TestSetup_PanicsOnInvalidConfigNamingTheField(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		isTrue(t, ok, "panics with an error, got %v", r)
		isTrue(t, errors.Is(err, pivot.ErrInvalidConfig) && strings.Contains(err.Error(), "RoutePrefix"), "%v", err)
	}()
	cfg := testConfig()
	cfg.RoutePrefix = "/users"
	pivot.Setup(&ooo.Server{}, cfg)
}

// plainStorage is a Database that cannot replicate.
type plainStorage struct{ ooo.Database }

func TestSetup_RefusesAStorageThatCannotReplicate(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		isTrue(t, errors.Is(err, pivot.ErrInvalidConfig) && strings.Contains(err.Error(), "Keys[0].Database"), "%v", err)
	}()
	cfg := testConfig()
	cfg.Keys[0].Database = plainStorage{}
	pivot.Setup(&ooo.Server{}, cfg)
}
