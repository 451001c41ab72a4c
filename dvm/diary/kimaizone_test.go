package diary_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKimaiZoneIsTheWorkersDefault: a worker whose Kimai user is in America/Bogota
// (UTC−5) is shown in that zone until a reviewer picks another; forgetting the reviewer's
// choice falls back to Kimai's zone, not UTC.
func TestKimaiZoneIsTheWorkersDefault(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	c := login(t, srv.URL)
	bogota, err := time.LoadLocation("America/Bogota")
	if err != nil {
		t.Fatal(err)
	}
	alice := f.data.Alice.Pub
	d.SetKimaiZones(map[string]string{alice: "America/Bogota", "not-a-key": "UTC", f.data.Bob.Pub: "Mars/Olympus"})

	type days struct {
		TZ   string `json:"tz"`
		Days []struct {
			Day string `json:"day"`
		} `json:"days"`
	}
	check := func(what string, loc *time.Location) {
		t.Helper()
		var out days
		getJSON(t, c, srv.URL+"/api/v1/workers/"+alice+"/days", http.StatusOK, &out)
		if out.TZ != loc.String() {
			t.Errorf("%s: days shown in %q, want %q", what, out.TZ, loc)
		}
		want := wantDays(f.data, alice, loc)
		if len(out.Days) != len(want) {
			t.Errorf("%s: %d days, want %d in %s", what, len(out.Days), len(want), loc)
		}
		for _, day := range out.Days {
			if _, ok := want[day.Day]; !ok {
				t.Errorf("%s: day %s has no segments in %s", what, day.Day, loc)
			}
		}
	}
	check("Kimai's zone", bogota)

	var w struct {
		Zone      string `json:"zone"`
		KimaiZone string `json:"kimai_zone"`
	}
	getJSON(t, c, srv.URL+"/api/v1/workers/"+alice, http.StatusOK, &w)
	if w.Zone != "" || w.KimaiZone != "America/Bogota" {
		t.Errorf("worker API zone %q, kimai_zone %q; want \"\" and America/Bogota", w.Zone, w.KimaiZone)
	}
	resp, err := c.Get(srv.URL + "/workers/" + alice)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "America/Bogota") {
		t.Errorf("worker page (%d) does not show America/Bogota", resp.StatusCode)
	}

	// Bob's malformed Kimai zone was dropped: he stays in the diary's default.
	var bob days
	getJSON(t, c, srv.URL+"/api/v1/workers/"+f.data.Bob.Pub+"/days", http.StatusOK, &bob)
	if bob.TZ != "UTC" {
		t.Errorf("bob with an unknown Kimai zone is shown in %q, want UTC", bob.TZ)
	}

	must(t, d.SetWorkerZone(alice, "Europe/Berlin"))
	berlin, _ := time.LoadLocation("Europe/Berlin")
	check("reviewer's choice", berlin)
	d.SetKimaiZones(map[string]string{alice: "America/Bogota"}) // a later poll must not override it
	check("reviewer's choice after a poll", berlin)
	must(t, d.SetWorkerZone(alice, ""))
	check("after the reviewer's choice is forgotten", bogota)
}
