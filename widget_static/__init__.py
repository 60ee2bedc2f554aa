"""Static files of the widget, shipped inside the wheel and served under /widget/."""
