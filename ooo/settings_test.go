package ooo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
)

// A negative setting is refused by Start, naming the field, and nothing is left
// running; zero still means the default.
func TestStart_RefusesNegativeSettings(t *testing.T) {
	for name, set := range map[string]func(*ooo.Server){
		"Deadline":          func(s *ooo.Server) { s.Deadline = -time.Second },
		"Tick":              func(s *ooo.Server) { s.Tick = -1 },
		"ReadTimeout":       func(s *ooo.Server) { s.ReadTimeout = -1 },
		"WriteTimeout":      func(s *ooo.Server) { s.WriteTimeout = -1 },
		"ReadHeaderTimeout": func(s *ooo.Server) { s.ReadHeaderTimeout = -1 },
		"IdleTimeout":       func(s *ooo.Server) { s.IdleTimeout = -1 },
		"MaxBodyBytes":      func(s *ooo.Server) { s.MaxBodyBytes = -1 },
	} {
		s := &ooo.Server{Silence: true}
		set(s)
		err := s.Start("127.0.0.1:0")
		if !errors.Is(err, ooo.ErrInvalidSetting) || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s negative: %v", name, err)
		}
		if s.Active() {
			t.Fatalf("%s negative: the server runs", name)
		}
	}
	s := &ooo.Server{Silence: true}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close(nil)
	if s.Deadline != ooo.DefaultDeadline || s.MaxBodyBytes != ooo.DefaultMaxBodyBytes {
		t.Fatalf("zero settings did not take the defaults: %v %v", s.Deadline, s.MaxBodyBytes)
	}
}
