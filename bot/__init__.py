"""kurashi's application: settings, HTTP app, channels, conversation core, storage and CLI."""
