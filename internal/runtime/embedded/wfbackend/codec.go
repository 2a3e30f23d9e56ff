package wfbackend

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/microsoft/durabletask-go/backend"
	"google.golang.org/protobuf/proto"
)

// marshalEvent encodes one event for an inbox row.
func marshalEvent(e *backend.HistoryEvent) ([]byte, error) {
	buf, err := proto.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal history event: %w", err)
	}
	return buf, nil
}

// unmarshalEvent decodes one event of an inbox row.
func unmarshalEvent(buf []byte) (*backend.HistoryEvent, error) {
	e := new(backend.HistoryEvent)
	if err := proto.Unmarshal(buf, e); err != nil {
		return nil, fmt.Errorf("unmarshal history event: %w", err)
	}
	return e, nil
}

// appendChunk encodes events as a history chunk: each event is a uvarint length
// followed by that many bytes of protobuf. Length prefixes, rather than a
// wrapping protobuf message, let a chunk be appended to without decoding it.
func appendChunk(dst []byte, events []*backend.HistoryEvent) ([]byte, error) {
	opts := proto.MarshalOptions{UseCachedSize: true}
	for _, e := range events {
		n := proto.Size(e)
		dst = binary.AppendUvarint(dst, uint64(n))
		var err error
		if dst, err = opts.MarshalAppend(dst, e); err != nil {
			return nil, fmt.Errorf("marshal history event: %w", err)
		}
	}
	return dst, nil
}

var errCorruptChunk = errors.New("corrupt history chunk")

// decodeChunk appends the events of one history chunk to dst.
func decodeChunk(dst []*backend.HistoryEvent, chunk []byte) ([]*backend.HistoryEvent, error) {
	for len(chunk) > 0 {
		n, k := binary.Uvarint(chunk)
		if k <= 0 || uint64(len(chunk)-k) < n {
			return nil, errCorruptChunk
		}
		e := new(backend.HistoryEvent)
		if err := proto.Unmarshal(chunk[k:k+int(n)], e); err != nil {
			return nil, fmt.Errorf("unmarshal history event: %w", err)
		}
		dst = append(dst, e)
		chunk = chunk[k+int(n):]
	}
	return dst, nil
}
