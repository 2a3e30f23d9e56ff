package actor

import (
	"context"
	"encoding/json"
	"fmt"
)

// State is one turn's view of an actor's state, for runtimes: the writes the turn
// made, in the order it first made them, over what the activation has cached, over
// the store. Runtimes embed it in their Turn and commit Writes when the turn
// succeeds.
type State struct {
	// Cache holds the values the activation has read or written before; a nil value
	// records that the key is absent. The runtime owns it and updates it after a
	// commit.
	Cache map[string][]byte
	// Load reads a key from the store; nil means absent.
	Load func(ctx context.Context, key string) ([]byte, error)

	writes map[string][]byte // nil value: delete
	order  []string
}

// Get implements Turn.Get.
func (s *State) Get(ctx context.Context, key string, v any) (bool, error) {
	b, ok := s.writes[key]
	if !ok {
		if b, ok = s.Cache[key]; !ok {
			var err error
			if b, err = s.Load(ctx, key); err != nil {
				return false, err
			}
			s.Cache[key] = b
		}
	}
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode state %q: %w", key, err)
	}
	return true, nil
}

// Set implements Turn.Set.
func (s *State) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state %q: %w", key, err)
	}
	s.write(key, b)
	return nil
}

// Delete implements Turn.Delete.
func (s *State) Delete(key string) { s.write(key, nil) }

func (s *State) write(key string, b []byte) {
	if s.writes == nil {
		s.writes = make(map[string][]byte)
	}
	if _, ok := s.writes[key]; !ok {
		s.order = append(s.order, key)
	}
	s.writes[key] = b
}

// Write is one buffered state write; a nil Value deletes the key.
type Write struct {
	Key   string
	Value []byte
}

// Writes returns the turn's writes in the order they were first made, each with
// its last value.
func (s *State) Writes() []Write {
	out := make([]Write, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, Write{Key: k, Value: s.writes[k]})
	}
	return out
}
