"""The kitchen station screen (`kds kitchen --station ID`): one station's tickets, driven by keys or a bump bar.

`app` holds the app and its factory; `model` works out what the screen shows from the client's order book (no
Textual); `cards`, `layout` and `bigtext` draw tickets; `board`, `header`, `printer_alert` and the three overlay
screens (recall, all-day, help) are the widgets; `keymap` names the actions and their keys; `kitchen.tcss` the look.
"""
