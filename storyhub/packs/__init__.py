"""Workshop packs for Conversations for Change, and the changes agreed at the workshops.

A `Workshop` draws on one theme run: its chosen themes in order, a few quotes per theme and
the questions to discuss. Generating a pack checks every quote against its story's current
transcript and consent, renders the Markdown from the templates in `workshops/` (which a
deployment can override), and keeps it as a numbered `WorkshopPack` version; HTML, PDF, quote
cards, the poster and the clips ZIP are all made from that version.
"""
