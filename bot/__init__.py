"""The Telegram front of Touchpoint: aiogram routers, keyboards, middlewares, runners."""
