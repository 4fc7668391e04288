"""Screens: onboarding, chat, add contact, safety number, verdict, file picker."""
