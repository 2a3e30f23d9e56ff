package httpapi

import (
	"net/http"

	"github.com/taskagent/taskagent/internal/chat"
)

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	user, err := pathID(r, "user", "user_id")
	if err != nil {
		return err
	}
	var req struct {
		Content string `json:"content"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := chat.ValidateContent(req.Content); err != nil {
		return err
	}
	ex, err := s.cfg.Chats.Send(r.Context(), user, req.Content)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, ex)
	return nil
}

// historyResponse is the body of GET /chat/{user}/history.
type historyResponse struct {
	UserID  string       `json:"user_id"`
	History []chat.Entry `json:"history"`
}

func (s *Server) chatHistory(w http.ResponseWriter, r *http.Request) error {
	user, err := pathID(r, "user", "user_id")
	if err != nil {
		return err
	}
	h, err := s.cfg.Chats.History(r.Context(), user)
	if err != nil {
		return err
	}
	if h == nil {
		h = []chat.Entry{} // "history": [] rather than null, for clients that iterate
	}
	s.writeJSON(w, http.StatusOK, historyResponse{UserID: user, History: h})
	return nil
}

func (s *Server) clearHistory(w http.ResponseWriter, r *http.Request) error {
	user, err := pathID(r, "user", "user_id")
	if err != nil {
		return err
	}
	if err := s.cfg.Chats.Clear(r.Context(), user); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
