package httpapi

import "net/http"

// statusResponse is the body of a successful probe.
type statusResponse struct {
	Status string `json:"status"`
}

// healthz reports only that the process serves HTTP. It checks no dependency:
// Kubernetes restarts a pod whose liveness probe fails, and restarting does not
// bring back a database or a sidecar.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, http.StatusOK, statusResponse{Status: "ok"})
	return nil
}

// readyz answers 503 while the runtime cannot serve, so that Kubernetes sends
// traffic elsewhere until it can.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			// Always 503, whatever the kind: the status tells the probe what to do,
			// the code tells a person why. Only the public part is sent.
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			s.writeErrorBody(w, http.StatusServiceUnavailable, publicOnly(err))
			return nil
		}
	}
	s.writeJSON(w, http.StatusOK, statusResponse{Status: "ok"})
	return nil
}
