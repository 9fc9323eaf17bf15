package main

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// chatReply is a control reply of the relay (hub/control.go, docs/chat.md)
// put in words for the chat command: a person reads "* nickname "erin" is
// taken", not the element with its XML entities.
type chatReply struct {
	// text is the reply in words, unescaped: the caller escapes it for
	// the terminal like any message.
	text string
	// nick is set for the answer to a nick request: ok tells whether the
	// nickname was taken.
	nick, ok bool
}

// parseChatReply reads a message from the relay. It returns false for
// anything that is not one whole control reply it knows (an ordinary
// message, which is shown as it came).
func parseChatReply(msg string) (chatReply, bool) {
	if !strings.HasPrefix(msg, "<passerelle:") {
		return chatReply{}, false
	}
	var el struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
		Members []struct {
			Name string `xml:"name,attr"`
		} `xml:"passerelle-member"`
		Text string `xml:",chardata"`
	}
	// The prefix is a name, not a declared namespace: read the elements as
	// "passerelle-joined" and so on (text holds no "<", so only tags change).
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "<passerelle:", "<passerelle-"), "</passerelle:", "</passerelle-")
	d := xml.NewDecoder(strings.NewReader(msg))
	d.Strict = true
	if err := d.Decode(&el); err != nil {
		return chatReply{}, false
	}
	attr := func(name string) string {
		for _, a := range el.Attrs {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	switch el.XMLName.Local {
	case "passerelle-joined":
		return chatReply{text: fmt.Sprintf("* you are in room %q (%s)", attr("room"), people(attr("members")))}, true
	case "passerelle-nick":
		return chatReply{text: fmt.Sprintf("* your nickname is %q", attr("name")), nick: true, ok: true}, true
	case "passerelle-members":
		var names []string
		for _, m := range el.Members {
			names = append(names, strconv.Quote(m.Name))
		}
		text := fmt.Sprintf("* room %q: %s", attr("room"), people(attr("count")))
		if len(names) > 0 {
			text += "; nicknames: " + strings.Join(names, ", ")
		}
		return chatReply{text: text}, true
	case "passerelle-pong":
		return chatReply{text: "* pong"}, true
	case "passerelle-error":
		cmd := attr("command")
		return chatReply{text: fmt.Sprintf("* refused (%s): %s", attr("code"), el.Text), nick: cmd == "nick"}, true
	}
	return chatReply{}, false
}

// people spells a member count the relay sent.
func people(n string) string {
	if n == "1" {
		return "1 member"
	}
	return n + " members"
}
