"""The one list of the bot's commands: published to Telegram's command menu and listed by /help."""

BOT_COMMANDS = ("start", "help", "invite", "points", "settings", "human", "language", "stop")
