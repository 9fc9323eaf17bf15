package hub

import (
	"bytes"
	"testing"
)

// FuzzControl feeds arbitrary control frames to the parser and to the reply
// builders: whatever a client sends, the relay answers with one frame, a
// single NUL at its end, and never panics.
func FuzzControl(f *testing.F) {
	for _, s := range []string{
		`<passerelle:join room="lobby"/>`, `<passerelle:nick name="ann"/>`, `<passerelle:who/>`,
		`<passerelle:join room="a&amp;b"/>`, `<passerelle:`, `<passerelle:x y="`, "<passerelle:\xff/>",
		`<passerelle:who/><passerelle:who/>`, `<passerelle:nick name="&#0;"/>`,
		`<passerelle:nick name="аnn"/>`, `<passerelle:nick name="ａｎｎ 山田"/>`,
	} {
		f.Add([]byte(s + "\x00"))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !bytes.HasPrefix(frame, []byte(controlPrefix)) || bytes.IndexByte(frame, 0) != len(frame)-1 {
			return // the relay only hands it NUL-terminated frames with the prefix
		}
		cmd, attrs, err := parseControl(frame)
		var reply []byte
		switch {
		case err != nil:
			reply = errorElement(errBadXML, cmd, err.Error())
		case cmd == "join" || cmd == "nick":
			name := attrs["room"] + attrs["name"]
			if err := checkName(name, maxRoomLen, cmd == "nick"); err != nil {
				reply = errorElement(errBadRoom, cmd, err.Error())
			} else if _, err := nickKey(name); err != nil {
				reply = errorElement(errBadNick, cmd, "nickname "+err.Error())
			} else {
				reply = element(cmd, "name", name)
			}
		default:
			reply = errorElement(errUnknownCommand, cmd, "unknown "+cmd)
		}
		if bytes.IndexByte(reply, 0) != len(reply)-1 {
			t.Fatalf("reply %q to %q has a NUL before its end", reply, frame)
		}
	})
}
