"""Interactive replies: controls on finished replies (feedback, regenerate, stop), tool-call
approvals, and the platform-neutral handling of the clicks on them."""
